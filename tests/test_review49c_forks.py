"""Review 49c, forks: a fork is refused, and now kept as evidence.

Forks 1: two different changes at the same index of one identity, each validly signed (the
second by the key the change before it committed to, and by the key before that), prove that
whoever made the second held the identity's keys (a stolen backup of its vault: docs/vault.md,
"Recovering from a stolen backup"), or that its owner signed both (duplicity). A node refused
the fork (`history forks from the stored copy`; at the owner's node, of a local identity: `a
local identity is rotated only by its own node`) and kept nothing: the signed proof of the
compromise was gone with the refusal, and no one, the owner's node included, could learn that
its keys had leaked. A node now keeps each refused fork (the verified history, the index and
hash of its first change the stored copy does not hold, when it was seen) in
`identity_forks`, read by `IdentityService.forks`, within MAX_FORKS_PER_IDENTITY per identity
and MAX_FORK_RECORDS in all (the first ones stay: docs/formats.md, "Pre-rotation and stored
histories"). A fork whose first differing change is the first of a checkpointed history is
not kept: its link to the change before it is only its checkpoint's word, no signature.

Forks 2: past MAX_FORK_RECORDS nothing more was kept, a local identity's fork included: a
member mints identities for free and forks its own, and the owner's node lost the evidence
that its own keys leaked. A local identity's forks are kept past it (within
MAX_FORKS_PER_IDENTITY each; only the node's operator makes local identities).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import run, run_json
from tests.support.histories import DAY, T0, HonestHistory, encode, extend, honest_history
from troth import limits
from troth.crypto import sha256
from troth.errors import IdentityError, IdentityFailure
from troth.identity import Identifier, rotate_identity, verify_history
from troth.node import Node, init_node, open_node

NOW = T0 + 3 * DAY


@pytest.fixture
def node(troth_home: Path) -> Iterator[Node]:
    init_node("n")
    with open_node("n") as node:
        yield node


def forks_of(base: HonestHistory, count: int) -> list[HonestHistory]:
    """`count` different rotations of `base`, each revealing its committed key, signed by it
    and by the current key (what a holder of both keys makes as often as it likes)."""
    return [extend(base, T0 + DAY + n) for n in range(count)]


def test_an_observed_fork_is_kept_as_evidence(node: Node) -> None:
    """Forks 1: the stored rotation, then another one at the same index: refused, and kept."""
    base = honest_history(1)
    real, forged = forks_of(base, 2)
    node.identities.import_history(encode(real.changes), now=NOW)
    with pytest.raises(IdentityError) as refused:
        node.identities.import_history(encode(forged.changes), now=NOW)
    assert refused.value.reason is IdentityFailure.FORK
    identifier = Identifier(sha256(base.changes[0].body))
    (kept,) = node.identities.forks(identifier)
    assert kept.index == 1
    assert kept.change_hash == sha256(forged.changes[1].body)
    assert kept.history == encode(forged.changes)
    # the evidence verifies on its own: a change 1 signed as a rotation must be
    assert verify_history(kept.history, now=NOW).current_change_hash == kept.change_hash
    with pytest.raises(IdentityError):  # seen again: kept once
        node.identities.check_known(verify_history(encode(forged.changes), now=NOW))
    assert len(node.identities.forks(identifier)) == 1


def test_a_strangers_fork_is_kept_and_bounded(node: Node) -> None:
    """Forks 1: the checks that store nothing (a peer not yet admitted) keep it too, at most
    MAX_FORKS_PER_IDENTITY of one identity (the first ones)."""
    base = honest_history(1)
    real, *forged = forks_of(base, limits.MAX_FORKS_PER_IDENTITY + 2)
    node.identities.import_history(encode(real.changes), now=NOW)
    for line in forged:
        with pytest.raises(IdentityError):
            node.identities.check_known(verify_history(encode(line.changes), now=NOW))
    kept = node.identities.forks(Identifier(sha256(base.changes[0].body)))
    assert [k.change_hash for k in kept] == [
        sha256(line.changes[1].body) for line in forged[: limits.MAX_FORKS_PER_IDENTITY]
    ]


def test_a_thiefs_rotation_of_a_local_identity_is_kept_at_the_owners_node(node: Node) -> None:
    """Forks 1: at the owner's node, the thief's own rotation of its local identity (made with
    a copy of the vault) is the proof its keys leaked."""
    local = node.identities.create(now=NOW, name="alice")
    forged = rotate_identity(
        node.vault, local.identity, local.primary_key, local.next_key, now=NOW + 5, valid_for=DAY
    ).identity
    with pytest.raises(IdentityError) as refused:
        node.identities.observe(forged)
    assert refused.value.reason is IdentityFailure.FORK
    (kept,) = node.identities.forks(local.identifier)
    assert (kept.index, kept.change_hash) == (1, forged.current_change_hash)
    assert node.identities.forks(Identifier(b"\x01" * 32)) == []


def test_a_database_from_before_the_table_opens_and_keeps_forks(troth_home: Path) -> None:
    """Forks 1: a node.db as the schema before `identity_forks` left it (the table absent,
    user_version lower; review 51d's, 53h's and 54x's migrations after it undone too) opens: the
    migration adds the table, and a fork is kept."""
    init_node("n")
    with open_node("n") as node:
        path = node.path / "node.db"
    with sqlite3.connect(path) as conn:
        (current,) = conn.execute("PRAGMA user_version").fetchone()
        conn.execute("DROP TABLE identity_forks")
        conn.execute("DROP TABLE rollback_counters")  # (review 51d's, the migration after it)
        conn.execute("DROP TABLE voucher_sources")  # (review 54x's)
        conn.execute(f"PRAGMA user_version = {current - 7}")  # (and 53h's, 66i's, 69f's, 71e's)
    base = honest_history(1)
    real, forged = forks_of(base, 2)
    with open_node("n") as node:
        node.identities.import_history(encode(real.changes), now=NOW)
        with pytest.raises(IdentityError):
            node.identities.import_history(encode(forged.changes), now=NOW)
        assert len(node.identities.forks(Identifier(sha256(base.changes[0].body)))) == 1
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == current


def test_a_replayed_fork_takes_no_write_lock(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """Forks 1, the fix's bound: a fork once public is anyone's to replay at every handshake;
    one kept already (or past the identity's bound) is refused without a write transaction."""
    base = honest_history(1)
    real, forged = forks_of(base, 2)
    node.identities.import_history(encode(real.changes), now=NOW)
    replayed = verify_history(encode(forged.changes), now=NOW)
    with pytest.raises(IdentityError):
        node.identities.check_known(replayed)

    def no_write() -> None:
        raise AssertionError("a write transaction")

    monkeypatch.setattr(node.identities.store, "transaction", no_write)
    for _ in range(3):
        with pytest.raises(IdentityError) as refused:
            node.identities.check_known(replayed)
        assert refused.value.reason is IdentityFailure.FORK


def test_the_cli_shows_the_owner_the_forks_of_her_identity(troth_home: Path) -> None:
    """Forks 1: `troth identity show` tells the owner a fork of her identity was seen (someone
    holds its keys: rotate it with --compromised), `troth identity forks` lists the evidence,
    and its history verifies on its own."""
    run("identity", "create", "alice")
    assert "forks" not in run_json("identity", "show", "alice")
    now = int(time.time())  # the CLI's clock
    with open_node("default") as node:
        local = node.identities.get("alice", now=now)
        forged = rotate_identity(
            node.vault, local.identity, local.primary_key, local.next_key, now=now, valid_for=DAY
        ).identity
        with pytest.raises(IdentityError):
            node.identities.check_known(forged)
    assert run_json("identity", "show", "alice")["forks"] == 1
    shown = run("identity", "show", "alice").output
    assert "1 fork(s) of it seen and refused, the newest" in shown
    assert "--compromised" in shown
    (kept,) = run_json("identity", "forks", "alice")
    assert (kept["index"], kept["change_hash"]) == (1, forged.current_change_hash.hex())
    assert bytes.fromhex(kept["history"]) == forged.history
    listed = run("identity", "forks", "alice").output
    assert f"change 1 {forged.current_change_hash.hex()}" in listed
    other = str(Identifier(b"\x02" * 32))
    assert run_json("identity", "forks", other) == []
    assert "no fork of" in run("identity", "forks", other).output


def test_a_full_record_still_keeps_a_local_identitys_fork(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forks 2: a member mints identities for free, and forks its own: with MAX_FORK_RECORDS
    full of those, the owner's node must still keep the fork of its own local identity (the
    evidence that its keys leaked), which no one else can add to."""
    monkeypatch.setattr(limits, "MAX_FORK_RECORDS", 2)
    for _ in range(3):
        base = honest_history(1)
        real, forged = forks_of(base, 2)
        node.identities.import_history(encode(real.changes), now=NOW)
        with pytest.raises(IdentityError):
            node.identities.import_history(encode(forged.changes), now=NOW)
    local = node.identities.create(now=NOW, name="alice")
    stolen = rotate_identity(
        node.vault, local.identity, local.primary_key, local.next_key, now=NOW + 5, valid_for=DAY
    ).identity
    with pytest.raises(IdentityError):
        node.identities.check_known(stolen)
    (kept,) = node.identities.forks(local.identifier)
    assert kept.change_hash == stolen.current_change_hash
