"""Review 73b, refuted: attacks on the PostgreSQL revocation's watcher and lock holders
(troth.secrets.engines.postgres_waits, postgres_locks) that did not work (PostgreSQL tests:
TROTH_REQUIRE_PG=1)."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import PgServer
from tests.test_review73b_pgwatch import granted_table, locked_after_the_holders
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    OrdersDb,
    login,
    now,
    orders,
    setup,
    world,
)
from troth import limits
from troth.secrets.engines import postgres_waits as waits


def test_a_lease_acts_as_no_other_role(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """73b refuted: a lease's session taking another role's identity, so that what it holds
    is judged by a login role (`usename`) that is not the role acting: `SET ROLE` to its
    template, to the admin or to another lease's role, and `SET SESSION AUTHORIZATION`, are
    all refused (a lease is a member of no role and no superuser); its prepared transaction's
    owner is its own role. Nor may it grant on a database (a shared catalog's row, which no
    look of the revocation follows) to another lease: its privileges are never grantable."""
    import psycopg

    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    try:
        first, second = granted_table(broker, agent, orders)
        role, other = str(first.lease.engine_ref), str(second.lease.engine_ref)
        with login(orders, first.credential.reveal()) as session:
            for target in [orders.writer, orders.server.user, other]:
                for statement in [f'SET ROLE "{target}"', f'SET SESSION AUTHORIZATION "{target}"']:
                    with pytest.raises(psycopg.errors.InsufficientPrivilege):
                        session.execute(statement)
            with contextlib.suppress(psycopg.errors.InsufficientPrivilege):  # or a warning
                session.execute(
                    f'GRANT CONNECT, TEMPORARY ON DATABASE {orders.dbname} TO "{other}"'
                )
            session.execute("BEGIN")
            session.execute(f'LOCK TABLE "{role}".t IN ACCESS SHARE MODE')
            session.execute("PREPARE TRANSACTION 'own-73b'")
        with orders.server.connect(dbname=orders.dbname) as admin:
            owner = admin.execute("SELECT owner FROM pg_prepared_xacts WHERE gid = 'own-73b'")
            assert owner.fetchone() == (role,)
            acl = admin.execute(
                "SELECT coalesce(datacl::text, '') FROM pg_database WHERE datname = %s",
                (orders.dbname,),
            ).fetchone()
            assert other not in acl[0]
    finally:
        orders.server.end_prepared(orders.dbname, "own-73b")
        broker.sweep(now() + 3600)
        broker.close()


def test_an_applications_late_lock_is_left_and_the_lease_reported_revoking(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """73b refuted: 73b pgwatch 2's late relation lock taken by an application's session (the
    admin's role, no lease's): the watcher, now following relation waits, leaves it (review
    69w, wave4b 1); the statement fails its lock timeout, the revocation ends in the typed
    engine failure and the lease is reported REVOKING (its role still there), never REVOKED;
    once the application commits, the sweep revokes it."""
    from troth.secrets import LeaseState

    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", 300)
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    first, _second = granted_table(broker, agent, orders)
    role = str(first.lease.engine_ref)
    app = orders.server.connect(dbname=orders.dbname)
    locked = locked_after_the_holders(monkeypatch, role, app)
    try:
        revoked = broker.revoke(agent, first.lease_id, now=now())
        assert locked
        assert revoked.state is LeaseState.REVOKING
        assert role in orders.lease_roles()
        app.execute("COMMIT")  # its session was left
        broker.sweep(now() + 3600)
        swept = broker.book.lease(first.lease.handle)
        assert swept is not None
        assert swept.state is LeaseState.REVOKED
    finally:
        app.close()
        broker.sweep(now() + 3600)
        broker.close()


def test_locks_a_lease_may_take_on_catalogs_or_advisory_hold_nothing(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """73b refuted: a lock the watcher does not follow, held by another live lease in a
    transaction it keeps open (idle, waiting for nothing): an advisory lock (no statement of
    the revocation takes one) and the catalogs the drops change (pg_depend, pg_shdepend,
    pg_class, pg_namespace: ACCESS SHARE only, with the SELECT PUBLIC holds, which conflicts
    with no lock `DROP OWNED` takes; a stronger mode is refused): the lease is REVOKED."""
    import psycopg

    from troth.secrets import LeaseState

    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", 1000)
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    first, second = granted_table(broker, agent, orders)
    holder = login(orders, second.credential.reveal())
    catalogs = "pg_catalog.pg_depend, pg_catalog.pg_shdepend, pg_catalog.pg_class"
    try:
        holder.execute("BEGIN")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            holder.execute(f"LOCK TABLE {catalogs} IN SHARE MODE")
        holder.execute("ROLLBACK")
        holder.execute("BEGIN")
        holder.execute(f"LOCK TABLE {catalogs}, pg_catalog.pg_namespace IN ACCESS SHARE MODE")
        holder.execute("SELECT pg_advisory_lock(73), pg_advisory_xact_lock(74)")
        revoked = broker.revoke(agent, first.lease_id, now=now())
        assert revoked.state is LeaseState.REVOKED
    finally:
        holder.close()
        broker.sweep(now() + 3600)
        broker.close()


def test_the_watcher_leaks_no_thread_nor_session_when_the_revocation_fails(
    pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """73b refuted: a revocation whose statement fails (an error out of the watched block)
    while the watcher is connected: the block's error propagates, the watcher's thread has
    ended and its admin session is closed (the server ends a session whose client is gone, a
    SIGKILLed node's, and the next start retries the REVOKING lease: test_secrets_postgres's
    test_sigkill_mid_issue_and_mid_revoke)."""
    monkeypatch.setattr(limits, "POSTGRES_WATCH_START_DIVISOR", 10**9)  # connects at once
    opened: list[Any] = []
    connected = threading.Event()

    def connect() -> Any:
        opened.append(pg_server.connect())
        connected.set()
        return opened[-1]

    with (
        pg_server.connect() as statement,
        pytest.raises(RuntimeError),
        waits.watching(connect, statement.info.backend_pid, "^tl_", 100),
    ):
        assert connected.wait(10)
        raise RuntimeError("the revocation's statement failed")
    assert [t for t in threading.enumerate() if t.name == "troth-pg-waits"] == []
    assert [conn.closed for conn in opened] == [True]
