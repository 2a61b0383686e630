"""The lease table's layout (docs/secrets.md, "Storage"): leases are found by the locator their
handle and lease id carry, a handle or lease id that names no row is refused like any unknown
lease, a taken locator is drawn again, and a database of an older layout is replaced only when
none of its leases is open."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import LeaseWorld, make_world
from tests.test_secrets_leases import broker_for, rejects
from troth.errors import ConfigError, SecretFailure
from troth.secrets import LeaseHandle, LeaseId, LeaseState
from troth.storage import SqliteDatabase

F = SecretFailure
OLD_LEASES = """CREATE TABLE secret_leases (
    handle BLOB PRIMARY KEY, identity BLOB NOT NULL, secret TEXT NOT NULL,
    engine TEXT NOT NULL, scope TEXT NOT NULL, chain_hash BLOB NOT NULL,
    authority BLOB NOT NULL, issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
    ttl INTEGER NOT NULL, max_ttl INTEGER NOT NULL, cap_at INTEGER NOT NULL,
    state INTEGER NOT NULL, state_at INTEGER NOT NULL, end_reason INTEGER,
    engine_ref TEXT, attempts INTEGER NOT NULL DEFAULT 0
)"""
# the second layout: keyed by locator, its quota counted per identity (no account column)
NO_ACCOUNT_LEASES = """CREATE TABLE secret_leases (
    locator INTEGER PRIMARY KEY, handle BLOB NOT NULL, proof BLOB NOT NULL,
    identity BLOB NOT NULL, secret TEXT NOT NULL,
    engine TEXT NOT NULL, scope TEXT NOT NULL, chain_hash BLOB NOT NULL,
    authority BLOB NOT NULL, issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
    ttl INTEGER NOT NULL, max_ttl INTEGER NOT NULL, cap_at INTEGER NOT NULL,
    state INTEGER NOT NULL, state_at INTEGER NOT NULL, end_reason INTEGER,
    engine_ref TEXT, attempts INTEGER NOT NULL DEFAULT 0
)"""
LAYOUTS = {
    "hash handles": (
        OLD_LEASES,
        "INSERT INTO secret_leases VALUES "
        "(?, ?, 'payments', 'token', '', ?, ?, 1, 2, 1, 1, 2, ?, 1, NULL, NULL, 0)",
        (bytes(16), bytes(32), bytes(32), bytes(32)),
    ),
    "no account": (
        NO_ACCOUNT_LEASES,
        "INSERT INTO secret_leases VALUES "
        "(1, ?, ?, ?, 'payments', 'token', '', ?, ?, 1, 2, 1, 1, 2, ?, 1, NULL, NULL, 0)",
        (bytes(16), bytes(16), bytes(32), bytes(32), bytes(32)),
    ),
}


@pytest.fixture
def world() -> LeaseWorld:
    return make_world(NOW)


def test_the_locator_is_the_issue_second(tmp_path: Path, world: LeaseWorld) -> None:
    broker = broker_for(tmp_path, world)
    issued = broker.issue(world.credential_a(), "payments", now=NOW + 7)
    assert issued.lease.handle.locator >> 28 == NOW + 7
    assert issued.lease_id.reveal()[:8] == issued.lease.handle.digest[:8]


def test_unknown_locators_and_forged_ids_name_no_lease(tmp_path: Path, world: LeaseWorld) -> None:
    broker = broker_for(tmp_path, world)
    a = world.credential_a()
    issued = broker.issue(a, "payments", now=NOW)
    revoked = broker.revoked_leases()
    assert str(issued.lease.handle) not in revoked
    # a handle whose locator is negative (top bit set) or names another row, or a handle
    # with the lease's locator and another tag
    digest = issued.lease.handle.digest
    for other in (b"\xff" * 16, bytes(8) + digest[8:], digest[:8] + bytes(8)):
        handle = LeaseHandle(other)
        assert str(handle) in revoked
        rejects(lambda h=handle: broker.revoke_lease(h, now=NOW + 1), F.NO_SUCH_LEASE)
    # the owner presenting a lease id that carries the lease's locator but not its secret part
    forged = LeaseId(issued.lease_id.reveal()[:8] + bytes(24))
    assert forged.handle.locator == issued.lease.handle.locator
    rejects(lambda: broker.renew(a, forged, now=NOW + 1), F.NO_SUCH_LEASE)
    rejects(lambda: broker.revoke(a, forged, now=NOW + 1), F.NO_SUCH_LEASE)
    # the stored proof is what an id must match, not only the public handle
    assert broker.store.get_lease(issued.lease.handle, bytes(16)) is None
    assert broker.store.get_lease(*issued.lease_id.handle_and_proof()) == issued.lease
    assert broker.leases(a)[0].state is LeaseState.ACTIVE


def test_a_taken_locator_is_drawn_again(
    tmp_path: Path, world: LeaseWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = broker_for(tmp_path, world)
    a, b = world.credential_a(), world.credential_b()
    fixed = LeaseId.new(NOW)
    draws: Iterator[LeaseId] = iter([fixed, fixed, LeaseId.new(NOW)])
    monkeypatch.setattr(LeaseId, "new", classmethod(lambda cls, now: next(draws)))
    first = broker.issue(a, "payments", now=NOW)
    second = broker.issue(b, "payments", now=NOW)  # draws `fixed` again, then another
    assert first.lease_id.reveal() == fixed.reveal()
    assert second.lease_id.reveal() != fixed.reveal()
    assert next(draws, None) is None
    assert [lease.handle for lease in broker.leases(a)] == [first.lease.handle]
    assert [lease.handle for lease in broker.leases(b)] == [second.lease.handle]
    assert broker.revoke(b, second.lease_id, now=NOW + 1).state is LeaseState.REVOKED
    assert broker.leases(a)[0].state is LeaseState.ACTIVE


def _old_database(path: Path, layout: str, state: LeaseState) -> None:
    table, insert, values = LAYOUTS[layout]
    db = SqliteDatabase(path)
    db.execute(table)
    db.execute(insert, (*values, int(state)))
    db.close()


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("state", [LeaseState.PENDING, LeaseState.ACTIVE, LeaseState.REVOKING])
def test_an_old_table_with_open_leases_refuses_to_open(
    tmp_path: Path, world: LeaseWorld, state: LeaseState, layout: str
) -> None:
    path = tmp_path / "node.db"
    _old_database(path, layout, state)
    with pytest.raises(ConfigError) as refused:
        broker_for(tmp_path, world)
    assert "open leases in the layout of an older troth" in str(refused.value)
    db = SqliteDatabase(path)
    assert db.fetch_one("SELECT COUNT(*) FROM secret_leases WHERE state = ?", (int(state),)) == (1,)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_an_old_table_without_open_leases_is_replaced(
    tmp_path: Path, world: LeaseWorld, layout: str
) -> None:
    path = tmp_path / "node.db"
    _old_database(path, layout, LeaseState.REVOKED)
    broker = broker_for(tmp_path, world)
    a = world.credential_a()
    issued = broker.issue(a, "payments", now=NOW)
    assert [lease.handle for lease in broker.leases(a, include_ended=True)] == [issued.lease.handle]
    broker.store.db.close()
    reopened = broker_for(tmp_path, world)  # the new layout opens as it is
    assert reopened.leases(a)[0].handle == issued.lease.handle
