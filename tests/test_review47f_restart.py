"""Review 47f, the node's durable state across crashes and restarts: problems found (each was
a strict xfail until fixed). Real `troth` processes killed (TROTH_CRASH_AT, exit 137 as a
SIGKILL would) between two durable effects, then the node reopened."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SoftHsm
from tests.support.forked import troth_forked
from troth.errors import KeyNotFound, TrothError
from troth.faults import CRASH_ENV, CRASH_EXIT_CODE, CRASH_POINTS
from troth.identity.service import PURPOSE_KEY_TTL
from troth.node import init_node, open_node
from troth.secrets.store import SqliteSecretStore
from troth.vault import KeyHandle


def rotate(*flags: str, crash: str | None = None) -> None:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash is not None:
        env[CRASH_ENV] = crash
    result = subprocess.run(
        [sys.executable, "-m", "troth.cli.main", "identity", "rotate", "agent", *flags,
         "--node", "hsm"],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )  # fmt: skip
    code = 0 if crash is None else CRASH_EXIT_CODE
    assert result.returncode == code, (crash, result.stdout, result.stderr)


def hsm_agent(softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> set[KeyHandle]:
    """Node `hsm` (a PKCS#11 vault) with identity `agent`, its signing key made: the keys a
    `--compromised` rotation retires (the primary, the committed next, the signing key)."""
    softhsm.init_node("hsm", monkeypatch)
    now = int(time.time())
    with open_node("hsm") as node:
        local = node.identities.create(now=now, name="agent")
        signer = node.identities.signer("agent", now=now)
        signer.sign(b"before")
        return {local.primary_key, local.next_key, signer.handle}


def signing(handles: set[KeyHandle]) -> set[KeyHandle]:
    """Which of `handles` the token still signs with."""
    left = set()
    with open_node("hsm") as node:
        for handle in handles:
            try:
                node.vault.sign(handle, b"after its retirement")
            except TrothError:
                continue
            left.add(handle)
    return left


def test_a_rotation_killed_after_its_commit_leaves_no_retired_key_in_the_token(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, troth_home: Path
) -> None:
    """Review 47f, rotate 1. A PKCS#11 node's rotation retires the old primary key and the
    purpose keys (the signing key) in the transaction that stores the new history, but their
    token objects, which no transaction covers, were destroyed after the commit, in memory
    only: a rotation killed between the two (then at `identity.rotate.after-commit`) left
    them in the token for good, still signing (nothing ever looked for them again), although
    the history says they are retired — after `--compromised`, the very keys the owner meant
    to be rid of. A software vault's rows go in the transaction
    (tests/test_review47f_refuted.py).

    Was a strict xfail (killed at `identity.rotate.after-commit`, the three keys signed after
    the next rotation) until the rotation recorded those keys (`retired_keys`) in its
    transaction and deleted them once it committed (`IdentityService.forget_retired`): killed
    there now, they are gone; killed between the commit and their deletion
    (`identity.retired-keys.before-delete`), they are recorded, and the next rotation (or a
    running node's maintenance round) deletes them."""
    retired = hsm_agent(softhsm, monkeypatch)
    rotate("--compromised", crash="identity.rotate.after-commit")
    assert signing(retired) == set()

    with open_node("hsm") as node:
        local = node.identities.get("agent", now=int(time.time()))
        retired = {local.primary_key, local.next_key}
    rotate("--compromised", crash="identity.retired-keys.before-delete")
    with open_node("hsm") as node:
        assert {str(h) for h in retired} <= set(node.identities.store.retired_keys(16))
        current = node.identities.find("agent")
        assert KeyHandle.parse(current.primary_key) not in retired  # the rotation committed
    assert signing(retired) == retired  # left by the kill, recorded
    rotate()  # the next rotation deletes them (a running node: its next maintenance round)
    assert signing(retired) == set()
    with open_node("hsm") as node:
        assert node.identities.store.retired_keys(16) == []


def test_a_running_nodes_maintenance_deletes_the_retired_keys_a_killed_rotation_left(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, troth_home: Path
) -> None:
    """What `Upkeep.maintain` runs each round (`forget_retired`) deletes the recorded keys and
    their records; a key deleted meanwhile by another process counts as deleted; a rotation
    that completes leaves nothing recorded."""
    softhsm.init_node("hsm", monkeypatch)
    now = int(time.time())
    with open_node("hsm") as node:
        local = node.identities.create(now=now, name="agent")
        first = local.primary_key
    rotate(crash="identity.retired-keys.before-delete")
    with open_node("hsm") as node:
        assert node.identities.store.retired_keys(16) == [str(first)]
        node.vault.sign(first, b"left in the token")
        (record,) = node.identities.store.retired_key_records(16)
        _named, _, proof = record.partition("#")
        node.vault.delete_retired(first, proof)  # type: ignore[attr-defined]  # (as another
        # process's call would have; `delete` destroys only a key its vault made: review 53m)
        assert node.identities.forget_retired() == 1
        assert node.identities.store.retired_keys(16) == []
        second = node.identities.find("agent").primary_key
    rotate(crash="identity.retired-keys.before-delete")
    with open_node("hsm") as node:
        assert node.identities.forget_retired() == 1
        with pytest.raises(TrothError):
            node.vault.sign(KeyHandle.parse(second), b"after its retirement")
        assert node.identities.forget_retired() == 0
    rotate()
    with open_node("hsm") as node:
        assert node.identities.store.retired_keys(16) == []


def test_a_software_vault_records_no_retired_key(troth_home: Path) -> None:
    """A software vault's retired keys are rows deleted in the rotation's transaction: nothing
    is recorded, nothing left to delete."""
    init_node("hsm")
    with open_node("hsm") as node:
        node.identities.create(now=int(time.time()), name="agent")
    rotate(crash="identity.rotate.after-commit")
    with open_node("hsm") as node:
        assert node.identities.store.retired_keys(16) == []
        assert node.identities.forget_retired() == 0


troth = troth_forked


def token_keys() -> list[KeyHandle]:
    """The handles of broker node `b`'s token signing keys in its store."""
    with open_node("b") as node:
        return [KeyHandle.parse(k.handle) for k in SqliteSecretStore(node.db).signing_keys()]


def in_vault(handles: list[KeyHandle]) -> list[KeyHandle]:
    with open_node("b") as node:
        held = []
        for handle in handles:
            try:
                node.vault.public_key(handle)
            except KeyNotFound:
                continue
            held.append(handle)
        return held


def test_a_compromised_token_key_rotation_killed_after_its_commit_leaves_no_withdrawn_key(
    troth_home: Path,
) -> None:
    """Review 47f, token keys 1. `troth secret rotate-key --compromised` withdraws every older
    token key "out of the JWKS and the vault now": out of the store in its commit, out of the
    vault after it, from memory only. Killed between the two the withdrawn keys stayed in the
    vault for good (a software vault's sealed rows, a token's objects), nothing deleting them
    later: the key the operator withdrew as stolen still signed, in every later backup of the
    node. Its tokens no longer validate (the JWKS and the broker know it no more), so what
    stays is the key itself.

    Was a strict xfail until the rotation recorded the withdrawn keys (`retired_keys`) in its
    commit: the node deletes them later (`IdentityService.forget_retired`: a running node's
    maintenance round, the next `troth secret rotate-key` or identity rotation)."""
    init_node("b")
    troth("secret", "rotate-key", "--node", "b")  # two keys: the first retired, the current
    older = token_keys()
    assert len(older) == 2
    rotate_key = ("secret", "rotate-key", "--compromised", "--node", "b")
    troth(*rotate_key, crash="secrets.rotate-key.before-commit")
    assert token_keys() == older  # rolled back: nothing withdrawn
    assert in_vault(older) == older
    troth(*rotate_key, crash="secrets.rotate-key.after-commit")
    kept = token_keys()
    assert not set(older) & set(kept)  # withdrawn from the store: the commit happened
    assert in_vault(older) == older  # left by the kill, recorded
    troth("secret", "rotate-key", "--node", "b")  # any later rotation, or a running node
    assert in_vault(older) == []
    with open_node("b") as node:
        assert node.identities.store.retired_keys(16) == []
    troth(*rotate_key)  # completed: the keys it withdraws are gone at once, none recorded
    assert in_vault(kept) == []
    with open_node("b") as node:
        assert node.identities.store.retired_keys(16) == []


def test_the_points_are_declared() -> None:
    assert {
        "identity.retired-keys.before-delete",
        "secrets.rotate-key.before-commit",
        "secrets.rotate-key.after-commit",
    } <= set(CRASH_POINTS)


def test_a_renewed_signing_key_leaves_the_token_once_the_renewal_commits(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, troth_home: Path
) -> None:
    """A purpose key within a day of its expiry is replaced at its next use: the one it
    replaces is retired the same way (recorded in the renewal's commit, deleted after it)."""
    softhsm.init_node("hsm", monkeypatch)
    now = int(time.time())
    with open_node("hsm") as node:
        node.identities.create(now=now, name="agent")
        old = node.identities.signer("agent", now=now).handle
        later = now + PURPOSE_KEY_TTL - 3600
        new = node.identities.signer("agent", now=later)
        assert new.handle != old
        new.sign(b"the renewed key signs")
        with pytest.raises(TrothError):
            node.vault.sign(old, b"after its retirement")
        assert node.identities.store.retired_keys(16) == []
