"""Review 51d, rollback 1-2: what an authority and a secrets broker do when their node.db is a
restored copy (troth.storage.rollback; docs/storage.md, "Rollback guard"), what counts as an
irreversible write and what does not (the hot paths: a ticket made, a lease issued, a token
validated, an expiry add nothing), and the restore recorded once (what `troth node status`
shows)."""

from __future__ import annotations

from pathlib import Path

import pytest

import troth
from tests.conftest import NOW
from tests.support.backups import (
    copy_db,
    node_db,
    release_authority,
    restore_db,
    restores_found,
)
from tests.support.leases import LeaseWorld, make_world, open_broker
from troth.errors import AuthorityError, SecretError
from troth.secrets import AllowListPolicy, Broker
from troth.secrets.lease import LeaseState
from troth.storage import SqliteDatabase
from troth.storage.rollback import Restored, guard_path, read_guard, restored_rows

CONFIG = {"scopes": ["read"], "ttl": 300, "audience": "x"}


# -- the authority (rollback 1) ----------------------------------------------------------------


def test_a_restored_authority_voids_every_ticket_it_held_once(
    troth_home: Path, tmp_path: Path
) -> None:
    """Which tickets were redeemed after the copy cannot be known: every one the copy holds
    is used up, an unredeemed one too (the cost: make it again); new tickets work; found
    once, recorded for `troth node status`."""
    with troth.Node.open("acme") as acme:
        authority = acme.create_authority()
        used, unused = authority.ticket({"team.name": "x"}), authority.ticket({"team.name": "y"})
    path = node_db(troth_home, "acme")
    copy = tmp_path / "acme.db"
    copy_db(path, copy)
    with troth.Node.open("a") as a:
        a.enroll(used)
    restore_db(path, copy)
    with troth.Node.open("b") as b:
        for ticket in (used, unused):
            with pytest.raises(AuthorityError):
                b.enroll(ticket)
    (found,) = restores_found(path)
    assert (found.scope, found.counter, found.guard, found.voided) == ("authority", 0, 1, 2)
    assert release_authority(troth_home, "acme") is not None  # held (review 65o, feed 2)
    with troth.Node.open("acme") as acme:
        fresh = acme.authority().ticket({"team.name": "z"})
    with troth.Node.open("b") as b:
        b.enroll(fresh)
    assert restores_found(path) == [found]  # found once: the later opens found the store current


def test_making_tickets_counts_nothing(troth_home: Path) -> None:
    """A ticket made (its code in no one's hands but its maker's) is no irreversible write:
    counted 0, the guard written for the first one only (it arms the scope: review 52c,
    rollback 4), none after it."""
    with troth.Node.open("acme") as acme:
        authority = acme.create_authority()
        authority.ticket({"team.name": "x"})
        guard = guard_path(node_db(troth_home, "acme"))
        written = guard.stat()
        for _ in range(3):
            authority.ticket({"team.name": "x"})
    assert read_guard(guard) == {"authority": 0}
    assert (guard.stat().st_ino, guard.stat().st_mtime_ns) == (
        written.st_ino,
        written.st_mtime_ns,
    )


def test_a_copy_from_before_a_revocation_is_found(troth_home: Path, tmp_path: Path) -> None:
    """A feed entry counts: an authority restored from before a revocation (no ticket used
    since) is found and said, its tickets voided (its lost entries it cannot write again:
    docs/storage.md, "Restoring a backup")."""
    with troth.Node.open("acme") as acme:
        authority = acme.create_authority()
        ticket = authority.ticket({"team.name": "x"})
        member = acme.identities.create("member")
    path = node_db(troth_home, "acme")
    copy = tmp_path / "acme.db"
    copy_db(path, copy)
    with troth.Node.open("acme") as acme:
        acme.authority().revoke_identity(member)
    assert read_guard(guard_path(path)) == {"authority": 1}
    restore_db(path, copy)
    with troth.Node.open("b") as b, pytest.raises(AuthorityError):
        b.enroll(ticket)
    assert [row.scope for row in restores_found(path)] == ["authority"]


def test_the_guard_deleted_with_a_restore_fails_closed(troth_home: Path, tmp_path: Path) -> None:
    """Restoring node.db and deleting its guard: a store that counted a write with no guard
    is a restored copy, never a fresh one."""
    with troth.Node.open("acme") as acme:
        authority = acme.create_authority()
        ticket, other = authority.ticket({"team.name": "x"}), authority.ticket({"team.name": "y"})
    with troth.Node.open("a") as a:
        a.enroll(other)  # counted: 1
    path = node_db(troth_home, "acme")
    copy = tmp_path / "acme.db"
    copy_db(path, copy)
    with troth.Node.open("a") as a:
        a.enroll(ticket)
    restore_db(path, copy)
    guard_path(path).unlink()
    with troth.Node.open("b") as b, pytest.raises(AuthorityError):
        b.enroll(ticket)
    (found,) = restores_found(path)
    assert (found.counter, found.guard) == (1, None)


# -- the broker (rollback 2) -------------------------------------------------------------------


def _broker_with_leases(path: Path, world: LeaseWorld) -> tuple[SqliteDatabase, Broker, list[str]]:
    policy = AllowListPolicy({world.agent_a.identifier: {"api": None}})
    db, broker = open_broker(path, now=NOW, policy=policy)
    broker.put_secret("api", "token", CONFIG, b"", now=NOW)
    tokens = []
    for _ in range(2):
        issued = broker.issue(world.credential_a(), "api", now=NOW, scope=["read"])
        tokens.append(str(issued.credential.reveal()["token"]))
    return db, broker, tokens


def test_a_restored_broker_revokes_every_open_lease_and_withdraws_its_keys(
    tmp_path: Path,
) -> None:
    world = make_world(NOW)
    path, copy = tmp_path / "node.db", tmp_path / "copy.db"
    db, broker, tokens = _broker_with_leases(path, world)
    (old_kid,) = broker.jwks(NOW).keys
    lease = broker.book.leases_of(world.agent_a.identifier)[0]
    broker.close()
    db.close()
    copy_db(path, copy)
    db, broker = open_broker(path, now=NOW)
    broker.revoke_lease(lease.handle, now=NOW + 1)
    broker.close()
    db.close()
    restore_db(path, copy)
    policy = AllowListPolicy({world.agent_a.identifier: {"api": None}})
    db, broker = open_broker(path, now=NOW + 2, policy=policy)
    try:
        assert broker.restored is not None
        assert broker.restored.voided == 2
        for token in tokens:  # the one revoked after the copy, and the other
            with pytest.raises(SecretError):
                broker.validate_token(token, audience="x", now=NOW + 3)
        states = {lease.state for lease in broker.book.leases_of(world.agent_a.identifier)}
        assert LeaseState.ACTIVE not in states
        assert old_kid not in broker.jwks(NOW + 3).keys  # a key withdrawn after the copy, too
        issued = broker.issue(world.credential_a(), "api", now=NOW + 3, scope=["read"])
        token = str(issued.credential.reveal()["token"])
        assert broker.validate_token(token, audience="x", now=NOW + 4).jti
    finally:
        broker.close()
        db.close()
    db, broker = open_broker(path, now=NOW + 5, policy=policy)
    try:
        assert broker.restored is None  # found once
        assert broker.validate_token(token, audience="x", now=NOW + 5).jti
        assert [row.scope for row in restored_rows(db)] == ["broker"]
    finally:
        broker.close()
        db.close()


def test_issuing_validating_and_expiring_count_nothing(tmp_path: Path) -> None:
    """The hot paths add no write: counted 0 after leases issued (the first arms the scope,
    the guard written for it only: review 52c, rollback 4), their tokens validated and their
    expiry swept (an expired lease is over in a restored copy too)."""
    world = make_world(NOW)
    path = tmp_path / "node.db"
    db, broker, tokens = _broker_with_leases(path, world)
    try:
        written = guard_path(path).stat()
        for token in tokens:
            broker.validate_token(token, audience="x", now=NOW + 1)
        broker.issue(world.credential_a(), "api", now=NOW + 1, scope=["read"])
        assert broker.book.expire(NOW + 400)
        assert read_guard(guard_path(path)) == {"broker": 0}
        assert guard_path(path).stat().st_mtime_ns == written.st_mtime_ns
        assert db.fetch_all("SELECT scope, counter FROM rollback_counters") == [("broker", 0)]
    finally:
        broker.close()
        db.close()


def test_a_feed_revoking_leases_counts_once_per_batch(tmp_path: Path) -> None:
    """Every lease a revocation ends counts, all in the transaction that ends them; the guard
    is written once for the batch."""
    world = make_world(NOW)
    path = tmp_path / "node.db"
    db, broker, _tokens = _broker_with_leases(path, world)
    try:
        ended = broker.book.revoke_identity(world.agent_a.identifier, NOW + 1)
        assert len(ended) == 2
        assert read_guard(guard_path(path)) == {"broker": 2}
    finally:
        broker.close()
        db.close()


def test_node_status_says_what_was_found() -> None:
    """`troth node status`'s line (JSON `restored`: each row's `to_json`); none, no line."""
    from troth.cli.node_cmds import _restored

    rows = [Restored("authority", 0, 1, 2, NOW), Restored("broker", 3, None, 1, NOW)]
    text = _restored([row.to_json() for row in rows])
    assert text is not None
    assert f"authority at {NOW}, 2 ticket(s) voided" in text
    # its members are refused until the operator releases it (review 65o, feed 2)
    assert "troth authority release-restored --authority NAME" in text
    assert f"broker at {NOW}, 1 lease(s) revoked" in text
    assert _restored([]) is None
