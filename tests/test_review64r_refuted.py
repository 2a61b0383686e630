"""Review 64r: attacks on the postgres engine's leases that did not work (each test would fail if
the defence it names broke). PostgreSQL tests: TROTH_REQUIRE_PG=1; every role a test makes is
revoked (or found gone) before it ends."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.backups import copy_db, restore_db
from tests.support.leases import LeaseWorld, make_world, open_broker
from tests.support.postgres import ADMIN_PASSWORD
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    login,
    now,
    orders,
    setup,
    world,
)
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, Broker, LeaseState
from troth.secrets.engines.postgres import PostgresEngine
from troth.secrets.lease import LeaseRequest

F = SecretFailure


def _revoke_all(broker: Broker, at: int) -> None:
    for lease in broker.store.leases_in([LeaseState.ACTIVE, LeaseState.PENDING]):
        broker.revoke_lease(lease.handle, now=at)


def test_a_replayed_request_attempt_makes_no_second_role(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """A request's attempt replayed (a copy of the agent's message) is refused before the
    engine (no second role); its retry (the next attempt, the answer lost) drops the first
    attempt's role, so one request holds one live role (LeaseBook.supersede)."""
    import psycopg

    broker = setup(tmp_path, world, orders)
    request = LeaseRequest(os.urandom(16))
    try:
        first = broker.issue(
            world.credential_a(), SECRET, scope=["orders:read"], now=now(), request=request
        )
        with pytest.raises(SecretError) as replayed:
            broker.issue(
                world.credential_a(), SECRET, scope=["orders:read"], now=now(), request=request
            )
        assert replayed.value.reason is F.BAD_REQUEST
        assert orders.lease_roles() == {first.credential.reveal()["user"]}
        second = broker.issue(
            world.credential_a(), SECRET, scope=["orders:read"], now=now(), request=request.retry()
        )
        assert orders.lease_roles() == {second.credential.reveal()["user"]}
        with pytest.raises(psycopg.OperationalError):
            login(orders, first.credential.reveal())
        login(orders, second.credential.reveal()).close()
    finally:
        _revoke_all(broker, now())
        broker.close()
    assert orders.lease_roles() == set()


def test_a_scope_not_granted_or_injected_makes_no_role(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """A member asks for a scope its policy entry does not grant, one the secret does not
    have, and scopes carrying SQL (quotes, NUL, a very long one): each is refused before the
    engine, and no role is made (the book's scope checks, `check_scope`)."""
    policy = AllowListPolicy({world.agent_a.identifier: {SECRET: ["orders:read"]}})
    db, broker = open_broker(tmp_path / "node.db", now=now(), policy=policy)
    broker.put_secret(SECRET, "postgres", orders.config(), ADMIN_PASSWORD.encode(), now=now())
    hostile = [
        (["orders:write"], F.DENIED),  # not on the member's allow list
        (["orders:admin"], F.BAD_REQUEST),  # not a scope of the secret
        (['orders:read"; DROP ROLE postgres; --'], F.BAD_REQUEST),
        (["orders:read\x00"], F.BAD_REQUEST),
        (["orders:read", "x" * 100_000], F.BAD_REQUEST),
        (["o'rders"], F.BAD_REQUEST),
    ]
    try:
        for scope, reason in hostile:
            with pytest.raises(SecretError) as refused:
                broker.issue(world.credential_a(), SECRET, scope=scope, now=now())
            assert refused.value.reason is reason
        assert orders.lease_roles() == set()
    finally:
        broker.close()
        db.close()


def test_hostile_identifiers_in_a_postgres_configuration_are_refused() -> None:
    """Template, database and admin names with a quote, a NUL, a space, 64 characters or a
    non-ASCII letter are refused when the secret is stored (`_ident`: what reaches SQL is a
    plain identifier of at most 63 bytes, and it is quoted as one besides)."""
    engine = PostgresEngine(role_prefix="tl_0123abcd_")
    base = {"dbname": "orders", "user": "admin", "templates": {"read": "reader"}}
    bad = ['re"ader', "re'ader", "reader\x00", "re ader", "r" * 64, "rëader", "", "1reader"]
    for value in bad:
        for changed in (
            {"templates": {"read": value}},
            {"dbname": value},
            {"user": value},
            {"databases": [value]},
        ):
            with pytest.raises(SecretError) as refused:
                engine.check_settings({**base, **changed}, ("read",))
            assert refused.value.reason is F.CONFIG_INVALID
    for host in ("db;host", "db\x00", "h" * 256, "db host"):
        with pytest.raises(SecretError):
            engine.check_settings({**base, "host": host}, ("read",))
    engine.check_settings({**base, "templates": {"read": "r" * 63}}, ("read",))  # the longest


def test_a_members_flood_of_requests_makes_at_most_its_quota_of_roles(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """One member sends 300 lease requests: its quota (2 here) bounds the roles made in
    PostgreSQL; the rest are refused before the engine (QUOTA_EXCEEDED, or BUSY once its
    issue budget is spent)."""
    policy = AllowListPolicy({world.agent_a.identifier: {SECRET: None}})
    db, broker = open_broker(tmp_path / "node.db", now=now(), policy=policy, quota=2)
    broker.put_secret(SECRET, "postgres", orders.config(), ADMIN_PASSWORD.encode(), now=now())
    at = now()
    reasons: list[SecretFailure] = []
    try:
        for _ in range(300):
            try:
                broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=at)
            except SecretError as exc:
                reasons.append(exc.reason)
        assert len(reasons) == 298
        assert set(reasons) <= {F.QUOTA_EXCEEDED, F.BUSY}
        assert len(orders.lease_roles()) == 2
    finally:
        _revoke_all(broker, at)
        broker.close()
        db.close()
    assert orders.lease_roles() == set()


def test_a_restored_copy_of_the_store_leaves_no_role_live(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """node.db put back from a copy taken while lease 1 was live: lease 1 was revoked after the
    copy (the copy still says ACTIVE) and lease 2 issued after it (the copy knows nothing of
    it). The restored broker revokes lease 1 again (the rollback guard: every open lease) and
    its orphan sweep drops lease 2's role (no lease of the copy names it)."""
    import psycopg

    path, copy = tmp_path / "node.db", tmp_path / "copy.db"
    broker = setup(tmp_path, world, orders)
    one = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
    broker.close()
    copy_db(path, copy)
    policy = AllowListPolicy({world.agent_b.identifier: {SECRET: None}})
    db, broker = open_broker(path, now=now(), policy=policy)
    broker.revoke_lease(one.lease.handle, now=now())
    two = broker.issue(world.credential_b(), SECRET, scope=["orders:read"], now=now())
    broker.close()
    db.close()
    assert orders.lease_roles() == {two.credential.reveal()["user"]}
    restore_db(path, copy)
    db, broker = open_broker(path, now=now())
    try:
        assert broker.restored is not None
        report = broker.recover(now())
        assert report.failed == 0
        assert report.orphans == 1
        lease = broker.book.lease(one.lease.handle)
        assert lease is not None
        assert lease.state is LeaseState.REVOKED
        assert orders.lease_roles() == set()
        with pytest.raises(psycopg.OperationalError):
            login(orders, two.credential.reveal())
    finally:
        broker.close()
        db.close()


def test_the_lease_password_is_in_no_repr_record_or_audit_row(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """The lease's password is in its credential alone: not in the issued lease's repr, the
    lease's JSON, the node's database (audit rows, lease rows: the file's bytes) or the
    server's pg_authid (a SCRAM verifier only)."""
    broker = setup(tmp_path, world, orders)
    issued = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
    password = str(issued.credential.reveal()["password"])
    try:
        assert password not in repr(issued)
        assert password not in json.dumps(issued.lease.to_json())
        broker.revoke(world.credential_a(), issued.lease_id, now=now())
    finally:
        _revoke_all(broker, now())
        broker.close()
    for name in os.listdir(tmp_path):
        if name.startswith("node.db"):
            assert password.encode() not in (tmp_path / name).read_bytes()
    with orders.server.connect() as conn:
        conn.execute(
            "CREATE TEMP TABLE seen AS SELECT rolpassword FROM pg_authid WHERE rolname LIKE 'tl_%'"
        )
        rows = conn.execute("SELECT rolpassword FROM seen").fetchall()
    assert all(row[0] is None or password not in row[0] for row in rows)


def test_a_node_clock_ahead_of_the_server_still_ends_the_role_at_the_leases_expiry(
    tmp_path: Path,
    orders: OrdersDb,  # noqa: F811
) -> None:
    """The node's clock an hour ahead of PostgreSQL's: the role's VALID UNTIL is an hour late
    by the server's clock, but the lease ends at its expiry by the node's (the sweep drops the
    role: a revocation never waits for VALID UNTIL), and an open session ends with it."""
    import psycopg

    at = now() + 3600
    ahead = make_world(at)  # the node's world: its feeds and chains dated by its clock
    broker = setup(tmp_path, ahead, orders)
    issued = broker.issue(ahead.credential_a(), SECRET, scope=["orders:read"], now=at)
    session = login(orders, issued.credential.reveal())
    try:
        report = broker.sweep(issued.lease.expires_at)
        assert report.expired == 1
        assert report.revoked == 1
        assert orders.lease_roles() == set()
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1").fetchone()
    finally:
        session.close()
        _revoke_all(broker, issued.lease.expires_at)
        broker.close()
