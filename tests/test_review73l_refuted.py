"""Review 73l, refuted: attacks on 73b's PostgreSQL watcher fixes that did not work
(troth.secrets.engines.postgres_waits, postgres_locks) (PostgreSQL tests: TROTH_REQUIRE_PG=1)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import PgServer, two_leases
from tests.test_review73b_pgwatch import granted_table
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    login,
    now,
    orders,
    setup,
    world,
)
from troth import limits
from troth.secrets.engines import postgres_locks as locks


def test_a_superuser_admin_reads_every_sessions_start(pg_server: PgServer) -> None:
    """73l refuted: a NULL `backend_start` matching another session at the pid (73b pgwatch
    1's `IS NOT DISTINCT FROM`) for a superuser admin: every process pg_stat_activity lists
    (the server's own background processes too) shows its start, and a prepared
    transaction's dummy process is listed nowhere (no pid in pg_locks), so a session read
    with none is one that had ended, whose row the usename test drops as well. (An admin
    that is no superuser reads NULL for every other role's session: 73l pgwatch 1.)"""
    with pg_server.connect() as admin:
        unstarted = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_start IS NULL"
        ).fetchone()
    assert unstarted == (0,)


def test_an_innocent_leases_table_the_revoked_lease_references_is_left(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """73l refuted: the revoked lease makes its revocation wait on a relation an innocent
    lease holds, to have the watcher (73b pgwatch 2: `end_lock_holders` at each relation
    wait) end the innocent's session. The innocent lease lets it reference its table (a
    foreign key from the revoked lease's table) and reads that table in an open transaction:
    dropping the revoked lease's table must lock the referenced one (its foreign key's
    triggers), and waits. `end_lock_holders` ends only the holders of what the revoked role
    owns and what depends on it, never a table its foreign key references (review 44b), so
    the innocent's session lives; the statement fails its lock timeout, the lease is
    REVOKING, and the sweep revokes it once the innocent's transaction ended."""
    from troth.secrets import LeaseState

    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", 300)
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    revoked, innocent = two_leases(broker, agent, SECRET, now(), "orders:write")
    role, other = str(revoked.lease.engine_ref), str(innocent.lease.engine_ref)
    holder = login(orders, innocent.credential.reveal())
    try:
        holder.execute(
            f'CREATE TABLE "{other}".u (a int PRIMARY KEY); GRANT USAGE ON SCHEMA "{other}"'
            f' TO "{role}"; GRANT REFERENCES ON "{other}".u TO "{role}"'
        )
        with login(orders, revoked.credential.reveal()) as session:
            session.execute(f'CREATE TABLE "{role}".t (a int REFERENCES "{other}".u)')
        holder.execute("BEGIN")
        holder.execute(f'LOCK TABLE "{other}".u IN ACCESS SHARE MODE')  # as a read does
        attempt = broker.revoke(agent, revoked.lease_id, now=now())
        assert attempt.state is LeaseState.REVOKING
        assert holder.execute("SELECT 1").fetchone() == (1,)  # the innocent's session lives
        holder.execute("COMMIT")
        broker.sweep(now() + 3600)
        swept = broker.book.lease(revoked.lease.handle)
        assert swept is not None
        assert swept.state is LeaseState.REVOKED
    finally:
        holder.close()
        broker.sweep(now() + 3600)
        broker.close()


def _quietly(session: Any, statement: str) -> None:
    import psycopg

    try:
        session.execute(statement)
    except psycopg.Error:
        return


def test_a_lease_retaking_the_lock_after_each_end_is_outrun(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """73l refuted: a loop of reconnecting sessions of another lease that may read the revoked
    lease's table, each locking it again as soon as the last was ended (after each
    `end_lock_holders`, the first just after the revocation's own look: 73b pgwatch 2), to keep
    the watcher ending sessions and the revocation waiting for ever. A lock asked for while
    the revocation's statement waits for (or holds) the table queues behind it: the watcher
    ends the one holder once, the statement takes the table and drops it, the queued session
    finds it gone; REVOKED, the loop's sessions bounded by the watcher's runs."""
    from troth.secrets import LeaseState

    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", 1000)
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    first, second = granted_table(broker, agent, orders)
    role = str(first.lease.engine_ref)
    lock = f'LOCK TABLE "{role}".t IN ACCESS SHARE MODE'
    real = locks.end_lock_holders
    sessions: list[Any] = []
    threads: list[threading.Thread] = []

    def then_retaken(conn: Any, dropped: str, leases: str, wait_ms: int) -> None:
        real(conn, dropped, leases, wait_ms)
        if dropped != role or len(sessions) >= 5:
            return
        session = login(orders, second.credential.reveal())
        sessions.append(session)
        session.execute("BEGIN")
        if len(sessions) == 1:  # granted at once: nothing else locks the table yet
            session.execute(lock)
            return
        threads.append(threading.Thread(target=_quietly, args=(session, lock)))
        threads[-1].start()

    monkeypatch.setattr(locks, "end_lock_holders", then_retaken)
    try:
        revoked = broker.revoke(agent, first.lease_id, now=now())
        assert revoked.state is LeaseState.REVOKED
        assert 2 <= len(sessions) < 5  # the watcher ended the first, the next one queued
    finally:
        for thread in threads:
            thread.join(timeout=10)
        for session in sessions:
            session.close()
        broker.sweep(now() + 3600)
        broker.close()


@pytest.mark.parametrize(
    "name",
    [
        "troth_lease_x",
        "tl_" + "0" * 7 + "_" + "0" * 32,  # a broker id one digit short
        "tl_" + "0" * 8 + "_" + "0" * 31,
        "tl_" + "0" * 8 + "_" + "0" * 33,
        "tl_ABCDEF00_" + "0" * 32,  # hex in capitals (a quoted identifier)
        "tl_" + "0" * 8 + "_" + "0" * 32 + "\n",  # a line more: `$` is the string's end
        "xtl_" + "0" * 8 + "_" + "0" * 32,
        "tl_" + "0" * 8 + "_" + "0" * 32 + "|x",
    ],
)
def test_no_role_name_but_a_brokers_matches_the_leases_pattern(
    pg_server: PgServer, name: str
) -> None:
    """73l refuted: an application's (an administrator's) role taken for a lease's by
    `usename ~ leases` (`locks.terminate`, LOCK_HOLDERS, WAITED_ON) and its session ended by a
    revocation: the pattern, anchored in both alternatives, matches only `tl_<8 hex>_<32
    hex>` (a broker's role; the roles of a cluster are the operator's to name, and no lease
    may create or rename one: no CREATEROLE is ever copied), under PostgreSQL's regular
    expressions, where `$` is the end of the string (a name ending in a line feed does not
    match, as it would under Python's `$`)."""
    from troth.secrets.engines.postgres import PostgresEngine

    leases = PostgresEngine("tl_0123abcd_").lease_roles
    with pg_server.connect() as admin:
        match = "SELECT %s::text ~ %s, %s::text ~ %s"
        lease = "tl_0123abcd_" + "f" * 32
        assert admin.execute(match, (name, leases, lease, leases)).fetchone() == (False, True)
