"""Review 73q, refuted: attacks on 73l's session identity checks in the PostgreSQL watcher
that did not work (troth.secrets.engines.postgres_locks, postgres_waits) (PostgreSQL tests:
TROTH_REQUIRE_PG=1)."""

from __future__ import annotations

import threading
from contextlib import ExitStack
from typing import Any

import pytest

from tests.support.postgres import PgServer
from tests.test_review73l_pgwatch import (
    _ADMIN,
    _FIRST,
    _LEASES,
    _REVOKED,
    _alive,
    _lease,
    _roles,
    _waiting,
)
from troth.secrets.engines import postgres_locks as locks
from troth.secrets.engines import postgres_waits as waits

_OWN_VXID = (
    "SELECT virtualtransaction FROM pg_locks"
    " WHERE pid = pg_backend_pid() AND locktype = 'virtualxid'"
)


def _vxid(session: Any) -> tuple[int, int]:
    """`session`'s virtual transaction id in a transaction it opens and ends: (slot, counter)."""
    with session.transaction():
        (vxid,) = session.execute(_OWN_VXID).fetchone()
    slot, counter = vxid.split("/")
    return int(slot), int(counter)


def test_a_new_session_in_a_slot_gets_no_vxid_an_earlier_one_had(pg_server: PgServer) -> None:
    """73q refuted: `locks.terminate` tells a session by the virtual transaction id read
    (73l pgwatch 1); a session that ended, its backend slot taken by the next session, whose
    first transaction got the same id, would be ended in its place. PostgreSQL (15 here)
    carries each slot's local transaction counter across the sessions using it (sinval's
    per-slot `nextLXID`): the next session in the slot counts on. The counter is 32 bits, a
    wrap four billion transactions away; a server restart resets it, but also ends the
    watcher's own session between its read and its terminate (nothing is signalled)."""
    seen: dict[int, int] = {}
    for _ in range(4):
        with pg_server.connect() as session:
            first = _vxid(session)
            second = _vxid(session)
        assert second[0] == first[0]
        assert second[1] > first[1]
        if first[0] in seen:
            assert first[1] > seen[first[0]]
        seen[first[0]] = second[1]
    assert len(seen) < 4  # a slot was used again (the test's own sessions only)


def test_an_admin_that_is_no_superuser_reads_a_lease_sessions_transaction(
    pg_server: PgServer,
) -> None:
    """73q refuted: pg_locks hiding another role's rows from an admin that is no superuser
    (CREATEROLE, pg_signal_backend), so that LOCK_HOLDERS read no lease session, or the
    terminate's transaction test (73l pgwatch 1) never held. pg_locks is every role's to
    read, pid and virtual transaction id included, and pg_stat_activity shows any role its
    sessions' pid and login role: the admin reads the session and the transaction it reads of
    itself, and ends it."""
    with _roles(pg_server), ExitStack() as stack:
        first = _lease(pg_server, _FIRST, stack)
        (own,) = first.execute(_OWN_VXID).fetchone()
        admin = stack.enter_context(pg_server.connect(user=_ADMIN))
        read = admin.execute(locks.lock_holders(admin), (_REVOKED, _LEASES)).fetchall()
        assert [(row[0], row[3]) for row in read] == [(first.info.backend_pid, own)]
        locks.end_lock_holders(admin, _REVOKED, _LEASES, 1000)
        assert not _alive(first)


def test_a_lease_committing_and_locking_again_in_a_new_transaction_queues(
    pg_server: PgServer,
) -> None:
    """73q refuted: a lease's session holding the revoked lease's table, read in one
    transaction, commits and locks it again in the next before the terminate, whose
    transaction test (73l pgwatch 1) then misses it, to keep the lock the revocation's
    statement waits for. A transaction-level lock ends with its transaction, and the lock
    asked for in the next one queues behind the revocation's, which waits for it already: the
    statement has the table. (A lock outliving its transaction is a prepared transaction's,
    rolled back by its gid: 73q pgwatch3 1 and 2; a session-level one is an advisory lock,
    which no drop waits for.)"""
    import psycopg

    with _roles(pg_server), ExitStack() as stack:
        revocation = stack.enter_context(pg_server.connect(options="-c lock_timeout=3000"))
        first = _lease(pg_server, _FIRST, stack)
        first.execute("LOCK TABLE t73l IN ACCESS EXCLUSIVE MODE")
        revocation.execute("BEGIN")
        statement = threading.Thread(
            target=revocation.execute, args=("LOCK TABLE t73l IN ACCESS EXCLUSIVE MODE",)
        )
        statement.start()
        try:
            _waiting(first, revocation.info.backend_pid)
            first.execute("COMMIT")
            first.execute("BEGIN")
            first.execute("SET LOCAL lock_timeout = 100")
            try:
                first.execute("LOCK TABLE t73l IN ACCESS SHARE MODE")
            except psycopg.errors.LockNotAvailable:
                first.execute("ROLLBACK")
            else:
                raise AssertionError("the lease locked the table again before the revocation")
        finally:
            statement.join(timeout=10)
        held = "SELECT granted FROM pg_locks WHERE pid = %s AND relation = 't73l'::regclass"
        assert first.execute(held, (revocation.info.backend_pid,)).fetchall() == [(True,)]
        revocation.execute("ROLLBACK")


_TABLES = ("t73q_1", "t73q_2", "t73q_3")


def _relocked(pg_server: PgServer, stack: ExitStack) -> Any:
    """A new session of the first lease, locking each of `_TABLES` it may have at once."""
    import psycopg

    session = _lease(pg_server, _FIRST, stack, lock=False)
    session.execute("BEGIN")
    for table in _TABLES:
        session.execute("SAVEPOINT s")
        try:
            session.execute(f"LOCK TABLE {table} IN ACCESS SHARE MODE NOWAIT")
        except psycopg.errors.LockNotAvailable:
            session.execute("ROLLBACK TO SAVEPOINT s")
    return session


def test_the_watchers_runs_under_a_lease_relocking_each_relation_are_one_per_relation(
    pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """73q refuted: another lease re-locking each relation the revoked lease owns after each
    of the watcher's `end_lock_holders` (a new session each time), to make it run LOCK_HOLDERS
    (the heaviest query of the revocation) without end while one statement drops them. Each
    run ends every holder of every such relation; the statement then waits for the next
    relation (a new key: 73l pgwatch 2 and 3), never again for one it has: one run per
    relation at most, and the statement ends (its `statement_timeout` bounds it anyway)."""
    sessions: list[Any] = []
    real = locks.end_lock_holders

    with _roles(pg_server) as su, ExitStack() as stack:
        for table in _TABLES:
            su.execute(f"CREATE TABLE {table} (a int); ALTER TABLE {table} OWNER TO {_REVOKED}")
            su.execute(f"GRANT SELECT ON {table} TO {_FIRST}")
        stack.callback(su.execute, f"DROP TABLE {', '.join(_TABLES)}")  # the sessions gone

        def then_relocked(conn: Any, role: str, leases: str, wait_ms: int) -> None:
            real(conn, role, leases, wait_ms)
            sessions.append(_relocked(pg_server, stack))

        monkeypatch.setattr(locks, "end_lock_holders", then_relocked)
        sessions.append(_relocked(pg_server, stack))
        revocation = stack.enter_context(pg_server.connect(options="-c lock_timeout=3000"))
        watcher = stack.enter_context(pg_server.connect())
        pid, followed = revocation.info.backend_pid, set[Any]()
        statement = threading.Thread(
            target=revocation.execute,
            args=(f"LOCK TABLE {', '.join(_TABLES)} IN ACCESS EXCLUSIVE MODE",),
        )
        revocation.execute("BEGIN")
        statement.start()
        for _ in range(100_000):
            if not statement.is_alive():
                break
            waits.end_waited_on(watcher, pid, _LEASES, 1000, role=_REVOKED, followed=followed)
        statement.join(timeout=10)
        held = "SELECT count(*) FROM pg_locks WHERE pid = %s AND mode = 'AccessExclusiveLock'"
        assert watcher.execute(held, (pid,)).fetchone() == (len(_TABLES),)
        alive = [_alive(session) for session in sessions]  # each run's, the last unended
        assert alive == [False] * (len(sessions) - 1) + [True]
        assert 2 <= len(sessions) <= len(_TABLES) + 1
