"""Review 52c, rollback 1-3: writes a restored copy of node.db brought back unseen (a broker's
withdrawal of compromised token keys, a lease renewed for less time), and what a guard's
creation left behind (troth.storage.rollback; docs/storage.md, "Rollback guard")."""

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
from tests.support.leases import (
    first_lease,
    make_world,
    open_broker,
    revoked_then_restored_unguarded,
)
from troth.errors import AuthorityError, SecretError
from troth.secrets import AllowListPolicy
from troth.storage import SqliteDatabase
from troth.storage.rollback import RollbackGuard, guard_path, read_guard

CONFIG = {"scopes": ["read"], "ttl": 300, "audience": "x"}


def test_a_copy_from_before_a_compromised_rotation_is_found(tmp_path: Path) -> None:
    """Review 52c, rollback 1: a compromised rotation withdraws every older token key; a copy
    taken before it brought the leaked key back into the JWKS, found by nothing (the
    rotation was not counted)."""
    path, copy = tmp_path / "node.db", tmp_path / "copy.db"
    db, broker = open_broker(path, now=NOW)
    (old_kid,) = broker.jwks(NOW).keys
    broker.close()
    db.close()
    copy_db(path, copy)
    db, broker = open_broker(path, now=NOW + 1)
    broker.keys.rotate_signing_key(NOW + 1, compromised=True)
    broker.close()
    db.close()
    assert read_guard(guard_path(path)) == {"broker": 1}
    restore_db(path, copy)
    db, broker = open_broker(path, now=NOW + 2)
    try:
        assert broker.restored is not None
        assert old_kid not in broker.jwks(NOW + 2).keys
    finally:
        broker.close()
        db.close()


def test_the_restore_rotation_does_not_make_a_copy_read_as_current(tmp_path: Path) -> None:
    """Review 52c, rollback 1: the compromised rotation a restored broker makes at open is not
    counted itself: a copy one write behind its guard would otherwise read as current after
    it, its open leases left active."""
    world = make_world(NOW)
    path, copy = tmp_path / "node.db", tmp_path / "copy.db"
    policy = AllowListPolicy({world.agent_a.identifier: {"api": None}})
    db, broker = open_broker(path, now=NOW, policy=policy)
    broker.put_secret("api", "token", CONFIG, b"", now=NOW)
    issued = [broker.issue(world.credential_a(), "api", now=NOW, scope=["read"]) for _ in "ab"]
    broker.close()
    db.close()
    copy_db(path, copy)
    db, broker = open_broker(path, now=NOW + 1, policy=policy)
    broker.revoke_lease(issued[0].lease.handle, now=NOW + 1)
    broker.close()
    db.close()
    restore_db(path, copy)
    db, broker = open_broker(path, now=NOW + 2, policy=policy)
    try:
        assert broker.restored is not None
        assert broker.restored.voided == 2
        token = str(issued[0].credential.reveal()["token"])
        with pytest.raises(SecretError):
            broker.validate_token(token, audience="x", now=NOW + 3)
    finally:
        broker.close()
        db.close()


def test_a_copy_from_before_a_shorter_renewal_is_found(tmp_path: Path) -> None:
    """Review 52c, rollback 2: a lease renewed for less time ends its earlier tokens at the new
    expiry (Broker.validate_token); a copy taken before the renewal held the longer expiry,
    so those tokens validated again, found by nothing."""
    world = make_world(NOW)
    path, copy = tmp_path / "node.db", tmp_path / "copy.db"
    policy = AllowListPolicy({world.agent_a.identifier: {"api": None}})
    db, broker = open_broker(path, now=NOW, policy=policy)
    broker.put_secret("api", "token", CONFIG, b"", now=NOW)
    issued = broker.issue(world.credential_a(), "api", now=NOW, scope=["read"])
    token = str(issued.credential.reveal()["token"])
    broker.close()
    db.close()
    copy_db(path, copy)
    db, broker = open_broker(path, now=NOW + 1, policy=policy)
    broker.renew(world.credential_a(), issued.lease_id, now=NOW + 1, ttl=10)
    with pytest.raises(SecretError):
        broker.validate_token(token, audience="x", now=NOW + 20)
    broker.close()
    db.close()
    restore_db(path, copy)
    db, broker = open_broker(path, now=NOW + 20, policy=policy)
    try:
        with pytest.raises(SecretError):
            broker.validate_token(token, audience="x", now=NOW + 20)
    finally:
        broker.close()
        db.close()


def test_a_renewal_for_as_long_or_longer_counts_nothing(tmp_path: Path) -> None:
    """The hot path: a renewal that does not shorten the lease writes no guard."""
    world = make_world(NOW)
    path = tmp_path / "node.db"
    policy = AllowListPolicy({world.agent_a.identifier: {"api": None}})
    db, broker = open_broker(path, now=NOW, policy=policy)
    try:
        broker.put_secret("api", "token", CONFIG, b"", now=NOW)
        issued = broker.issue(world.credential_a(), "api", now=NOW, scope=["read"])
        broker.renew(world.credential_a(), issued.lease_id, now=NOW + 5)
        assert read_guard(guard_path(path)) == {"broker": 0}  # armed by the issue only
    finally:
        broker.close()
        db.close()


def test_leftover_temporary_guards_are_cleaned(tmp_path: Path) -> None:
    """Review 52c, rollback 3: a process killed between a guard's temporary file and its
    rename left `.node.db.guard.*.tmp` beside node.db for good; a check at open sweeps them
    (under the guard's lock: never one another process is writing)."""
    path = tmp_path / "node.db"
    db = SqliteDatabase(path)
    try:
        leftover = tmp_path / ".node.db.guard.0011223344556677.tmp"
        leftover.write_bytes(b"x")
        other = tmp_path / ".other.db.guard.0011223344556677.tmp"
        other.write_bytes(b"y")
        RollbackGuard(db, "broker").check(NOW, lambda: 0)
        assert not leftover.exists()
        assert other.exists()  # another database's
    finally:
        db.close()


def test_a_copy_that_counted_nothing_restored_without_its_guard_is_found(
    troth_home: Path, tmp_path: Path
) -> None:
    """Review 52c, rollback 4: a copy from before the authority's first counted write (its
    count 0), restored with its guard deleted, read as a fresh store: the ticket redeemed
    after it was redeemed again. A ticket made arms the scope (its entry at 0, in the store
    and the guard), so a store holding one with no guard is a restored copy."""
    with troth.Node.open("acme") as acme:
        ticket = acme.create_authority().ticket({"team.name": "x"})
    path = node_db(troth_home, "acme")
    copy = tmp_path / "acme.db"
    copy_db(path, copy)
    with troth.Node.open("a") as a:
        a.enroll(ticket)
    restore_db(path, copy)
    guard_path(path).unlink()
    with troth.Node.open("b") as b, pytest.raises(AuthorityError):
        b.enroll(ticket)
    assert read_guard(guard_path(path)) == {"authority": 0}  # written again, found once:
    assert release_authority(troth_home, "acme") is not None  # held (review 65o, feed 2)
    with troth.Node.open("acme") as acme:
        fresh = acme.authority().ticket({"team.name": "y"})
    with troth.Node.open("b") as b:
        b.enroll(fresh)
    assert [(row.counter, row.guard) for row in restores_found(path)] == [(0, None)]


def test_a_broker_copy_that_counted_nothing_restored_without_its_guard_is_found(
    tmp_path: Path,
) -> None:
    """Review 52c, rollback 4: the broker's side: a lease issued arms the scope."""
    path = tmp_path / "node.db"
    _world, policy, issued = first_lease(path, now=NOW, config=CONFIG)
    revoked_then_restored_unguarded(path, at=NOW + 1, policy=policy, issued=issued)
