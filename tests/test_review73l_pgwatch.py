"""Review 73l, pgwatch: 73b's PostgreSQL watcher fixes reviewed (troth.secrets.engines.
postgres_locks, postgres_waits) (PostgreSQL tests: TROTH_REQUIRE_PG=1).

pgwatch 1: `locks.terminate` told the session read from the one at its pid now by its
`backend_start`, which pg_stat_activity shows only to a superuser, a member of
pg_read_all_stats or of the session's role: an admin that is none (CREATEROLE and
pg_signal_backend, as docs/secrets.md allows) read NULL for every lease's session, and
`backend_start IS NOT DISTINCT FROM NULL` held for any session at the pid, another lease's
that took it meanwhile (73b pgwatch 1's attack) ended in its place. The session is now also
told by its virtual transaction id (pg_locks, which every role reads: the server keeps each
backend slot's local transaction counter across the sessions using it), so a session is ended
only while it is still in the transaction that was read holding the lock.

pgwatch 2: 73b pgwatch 2 followed each relation (schema) the revocation's session waits for
once per watched block: a later statement of the block (DROP OWNED's retry with CASCADE after
another role's object still depended on the lease's, the next batch of the drops) waiting for
the same relation again, which a lease's session queued behind the first statement had taken
once it ended, was not followed, and failed its lock timeout at each retry. It is now
followed once per relation and transaction of the revocation's session.

pgwatch 3: likewise within one transaction: a first wait for a weak lock on the table (a
read), its holder ended, let another lease's weak lock by, and the same transaction's wait for
a strong lock on it (the drop) was left. Followed once per relation, mode and transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from tests.support.postgres import ADMIN_PASSWORD, PgServer
from tests.test_review73b_pgwatch import _ReadBefore
from troth.secrets.engines import postgres_locks as locks
from troth.secrets.engines import postgres_waits as waits

_LEASES = "^tl_[0-9a-f]{8}_[0-9a-f]{32}$"
_REVOKED, _FIRST, _SECOND = (f"tl_731a0000_{digit * 32}" for digit in "abc")
_ADMIN = "admin_73l"


@contextmanager
def _roles(pg_server: PgServer) -> Iterator[Any]:
    """The revoked lease's role owning table `t73l`, two lease roles that may read it, and an
    admin that is no superuser (CREATEROLE, pg_signal_backend); the superuser's session."""
    with pg_server.connect() as su:
        su.execute(
            f"CREATE ROLE {_ADMIN} LOGIN CREATEROLE PASSWORD '{ADMIN_PASSWORD}';"
            f" GRANT pg_signal_backend TO {_ADMIN}; CREATE ROLE {_REVOKED};"
            f" CREATE ROLE {_FIRST} LOGIN PASSWORD 'x'; CREATE ROLE {_SECOND} LOGIN PASSWORD 'x';"
            f" CREATE TABLE t73l (a int); ALTER TABLE t73l OWNER TO {_REVOKED};"
            f" GRANT SELECT, UPDATE ON t73l TO {_FIRST}, {_SECOND}"
        )
        try:
            yield su
        finally:  # a session of its own: a test may have restarted the server (73v refuted 2)
            with pg_server.connect() as clean:
                for role in (_FIRST, _SECOND):
                    ended = "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                    clean.execute(ended + " WHERE usename = %s", (role,))
                clean.execute(
                    f"DROP TABLE t73l; DROP ROLE {_FIRST}; DROP ROLE {_SECOND};"
                    f" DROP ROLE {_REVOKED}; DROP ROLE {_ADMIN}"
                )


def _lease(pg_server: PgServer, role: str, stack: ExitStack, *, lock: bool = True) -> Any:
    """A session of lease `role`, holding a lock on `t73l` in its open transaction."""
    session = stack.enter_context(pg_server.connect(user=role, password="x"))
    if lock:
        session.execute("BEGIN")
        session.execute("LOCK TABLE t73l IN ACCESS SHARE MODE")
    return session


def _alive(session: Any) -> bool:
    import psycopg

    try:
        session.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def test_a_pid_read_by_an_admin_that_is_no_superuser_is_not_ended_as_another_lease(
    pg_server: PgServer,
) -> None:
    """73l pgwatch 1: an admin that is no superuser (CREATEROLE, pg_signal_backend) read the
    first lease's session holding the revoked lease's table (LOCK_HOLDERS) with a NULL
    `backend_start` (pg_stat_activity hides it from such an admin); the session ended and
    another lease's session took its pid before the terminate, whose `backend_start IS NOT
    DISTINCT FROM NULL` held for it: ended in its place. Now told by its transaction too."""
    with _roles(pg_server), ExitStack() as stack:
        admin = stack.enter_context(pg_server.connect(user=_ADMIN))
        first = _lease(pg_server, _FIRST, stack)
        read = admin.execute(locks.lock_holders(admin), (_REVOKED, _LEASES)).fetchall()
        assert [row[0] for row in read] == [first.info.backend_pid]
        assert read[0][2] is None  # its backend_start, hidden from this admin
        first.close()  # it ended; the second lease's session has its pid now
        second = _lease(pg_server, _SECOND, stack)
        forged = [(second.info.backend_pid, *read[0][1:])]
        now = {"SELECT has_table_privilege": [(False,)], locks.LOCK_HOLDERS[:40]: forged}
        locks.end_lock_holders(_ReadBefore(admin, now), _REVOKED, _LEASES, 1000)
        assert _alive(second)


def _waiting(conn: Any, pid: int) -> None:
    """Return once session `pid` waits for a lock (bounded: the test fails otherwise)."""
    query = "SELECT 1 FROM pg_locks WHERE pid = %s AND NOT granted"
    for _ in range(100_000):
        if conn.execute(query, (pid,)).fetchone() is not None:
            return
    pytest.fail("the revocation's statement never waited")


def _locking(
    revocation: Any, watcher: Any, followed: set[Any], mode: str = "ACCESS EXCLUSIVE"
) -> None:
    """In `revocation`'s transaction, a statement locking `t73l` in `mode` (as a drop does),
    its wait followed by the watcher's `end_waited_on` (`followed` shared by the block)."""
    statement = threading.Thread(
        target=revocation.execute, args=(f"LOCK TABLE t73l IN {mode} MODE",)
    )
    statement.start()
    try:
        _waiting(watcher, revocation.info.backend_pid)
        pid = revocation.info.backend_pid
        waits.end_waited_on(watcher, pid, _LEASES, 1000, role=_REVOKED, followed=followed)
    finally:
        statement.join(timeout=10)


def test_a_relation_waited_for_again_in_a_later_transaction_is_followed(
    pg_server: PgServer,
) -> None:
    """73l pgwatch 2: the revocation's session waits for the revoked lease's table held by a
    lease's session, which the watcher ends (73b pgwatch 2); its transaction ends (DROP OWNED
    failed on another role's dependent object) and a later one of the same block (DROP OWNED
    ... CASCADE) waits for the table again, which another lease's session took meanwhile: the
    watcher, having followed that relation once in the block, left it, and the statement
    failed its lock timeout. Now each transaction's wait is followed."""
    with _roles(pg_server), ExitStack() as stack:
        revocation = stack.enter_context(pg_server.connect(options="-c lock_timeout=3000"))
        watcher = stack.enter_context(pg_server.connect())
        followed: set[Any] = set()
        first = _lease(pg_server, _FIRST, stack)
        revocation.execute("BEGIN")
        _locking(revocation, watcher, followed)
        revocation.execute("COMMIT")
        assert not _alive(first)
        second = _lease(pg_server, _SECOND, stack)
        revocation.execute("BEGIN")
        _locking(revocation, watcher, followed)
        revocation.execute("COMMIT")
        assert not _alive(second)


def test_a_stronger_lock_waited_for_in_the_same_transaction_is_followed(
    pg_server: PgServer,
) -> None:
    """73l pgwatch 3: the revocation's transaction waits for a weaker lock on the revoked
    lease's table (a read of it) behind a lease's session holding a strong one, which the
    watcher ends; another lease's session then takes a weak lock (granted: it conflicts with
    nothing held nor waited for), and the same transaction waits for a strong lock on the
    table (its drop): the watcher, having followed that relation in that transaction,
    left it, and the statement failed its lock timeout. Now each mode waited for is followed."""
    with _roles(pg_server), ExitStack() as stack:
        revocation = stack.enter_context(pg_server.connect(options="-c lock_timeout=3000"))
        watcher = stack.enter_context(pg_server.connect())
        followed: set[Any] = set()
        first = stack.enter_context(pg_server.connect(user=_FIRST, password="x"))
        first.execute("BEGIN")
        first.execute("LOCK TABLE t73l IN ACCESS EXCLUSIVE MODE")
        revocation.execute("BEGIN")
        _locking(revocation, watcher, followed, "ACCESS SHARE")
        assert not _alive(first)
        second = _lease(pg_server, _SECOND, stack)
        _locking(revocation, watcher, followed)
        revocation.execute("COMMIT")
        assert not _alive(second)
