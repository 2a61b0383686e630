"""Review 73q, refuted: attacks on 73l's session identity checks in the PostgreSQL watcher
that did not work (troth.secrets.engines.postgres_locks, postgres_waits) (PostgreSQL tests:
TROTH_REQUIRE_PG=1)."""

from __future__ import annotations

import threading
from contextlib import ExitStack
from typing import Any

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
