"""The transactions a postgres revocation's statement waits on, found while it waits
(troth.secrets.engines.postgres; review 72q, savepoint 1).

A row another transaction updated and has not ended (a catalog row `DROP OWNED` deletes, an
ACL row its `REVOKE` changes, a data row of a large object it unlinks) carries that
transaction's id in its `xmax`, which `postgres_locks.LOCK_HOLDERS` matches against the
transaction ids pg_locks names (reviews 70w, 70z, 71b pglease 3). An update made in a
savepoint carries the subtransaction's id instead, and once the savepoint is released that id's
lock is gone from pg_locks: a waiter on the row finds the top transaction through pg_subtrans,
which SQL cannot read, so nothing named the holder, and the revocation waited its lock timeout
at every retry, REVOKING for as long as the holder kept its transaction open, or for good once
prepared (review 71b, pglease 5; review 72q, savepoint 1). So while a revocation's statements
run in a database (`watching`), a second admin session of that database looks at the first:
when it waits on a transaction, its ungranted `transactionid` lock in pg_locks names the
transaction the server found, and the session holding that lock is ended (a prepared
transaction, which has none, rolled back), when it is a lease role's (`leases`, as
`LOCK_HOLDERS`): another role's (an application's) is left, the statement fails its lock
timeout and the revocation is retried (review 69w, wave4b 1). Only what the statement waits on
ends: nothing is guessed from ids. A wait for a relation or a schema runs
`locks.end_lock_holders` again (review 73b, pgwatch 2; for each mode, in each transaction:
review 73l, pgwatch 2 and 3), and a session is ended only while it is the one read, a lease
role's, in the transaction read (`locks.terminate`; review 73b, pgwatch 1; review 73l,
pgwatch 1)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

from troth import limits
from troth.secrets.engines import postgres_locks as locks

__all__ = [
    "QUEUED_BEFORE",
    "WAITED_ON",
    "end_waited_on",
    "watching",
]

_WAITING: Final = (
    "SELECT wait_event FROM pg_stat_activity WHERE pid = %s"
    " AND wait_event_type = 'Lock'"
    " AND wait_event IN ('transactionid', 'tuple', 'relation', 'object')"
)
WAITED_ON: Final = (
    # the transaction the session `pid` waits on (the top one of a released savepoint's, or a
    # savepoint still open), and whoever holds its lock: a session, or a prepared transaction
    # of this database (no pid), and a session's start and transaction (`locks.terminate`), a
    # prepared one's xid (`locks.roll_back_prepared`; review 73v, prepared2 1)
    "SELECT h.pid, p.gid, (SELECT a.backend_start FROM pg_stat_activity a WHERE a.pid = h.pid),"
    " CASE WHEN p.gid IS NULL THEN h.virtualtransaction ELSE p.transaction::text END"
    " FROM pg_locks w JOIN pg_locks h ON h.locktype = 'transactionid'"
    " AND h.transactionid = w.transactionid AND h.granted"
    " LEFT JOIN pg_prepared_xacts p ON h.pid IS NULL AND p.transaction = h.transactionid"
    " AND p.database = current_database() "
    "WHERE w.pid = %s AND w.locktype = 'transactionid' AND NOT w.granted"
    " AND (h.pid IS NOT NULL OR p.gid IS NOT NULL)"
    " AND COALESCE(CASE WHEN p.gid IS NOT NULL THEN p.owner::text"
    " ELSE (SELECT a.usename::text FROM pg_stat_activity a WHERE a.pid = h.pid) END, '') ~ %s"
)

QUEUED_BEFORE: Final = (
    # the sessions holding the row lock (`tuple`) session `pid` waits for: each queued before it
    # to change the row, waiting on the transaction that changed it (review 72u, watcher 1),
    # whether it is a lease role's, and its start and transaction (`locks.terminate`)
    "SELECT DISTINCT h.pid, a.usename::text ~ %s, a.backend_start, h.virtualtransaction"
    " FROM pg_locks w JOIN pg_locks h"
    " ON h.locktype = 'tuple' AND h.granted AND h.database IS NOT DISTINCT FROM w.database"
    " AND h.relation = w.relation AND h.page = w.page AND h.tuple = w.tuple"
    " JOIN pg_stat_activity a ON a.pid = h.pid "
    "WHERE w.pid = %s AND w.locktype = 'tuple' AND NOT w.granted AND h.pid <> w.pid"
)


_WAITED_FOR: Final = (
    # the relation or object (a schema) session `pid` waits to lock, in which mode and in
    # which of its transactions (review 73l, pgwatch 2 and 3)
    "SELECT locktype, database, relation, classid, objid, objsubid, mode, virtualtransaction"
    " FROM pg_locks"
    " WHERE pid = %s AND NOT granted AND locktype IN ('relation', 'object')"
)


def end_waited_on(
    conn: Any,
    pid: int,
    leases: str,
    wait_ms: int,
    *,
    role: str | None = None,
    followed: set[tuple[Any, ...]] | None = None,
) -> None:
    """End the session (roll back the prepared transaction) holding the transaction session
    `pid` waits on, a lease role's (`leases`) only; nothing when it waits on none (the cheap
    look first: reading pg_locks takes the server's lock table partitions). A statement
    wanting a row that another session already waits to change waits on that session's row
    lock (`tuple`), not on the transaction (review 72u, watcher 1: a session queued on the held
    row, a lease's or an application's, kept the statement unwatched at every retry): the lease
    role's transaction the queued session waits on is ended, and the queued session with it, a
    lease role's, the statement then waiting on the transaction, looked at next; another
    role's is left (watcher 3): its change goes through first, and the statement, failing on
    it ("tuple concurrently updated") or on its lock timeout, is retried with the revocation.
    A lease's session queued behind another role's transaction (an application's, never
    ended) is left (review 72y, pgend 1: it was ended, its statement lost, for nothing, the
    statement then waiting on that transaction). A statement waiting for a relation or a
    schema (`object`) waits on the sessions holding a lock on it: `locks.end_lock_holders` of
    the revoked `role` runs again, once for each relation (schema) and mode waited for in each
    of the session's transactions (`followed`, the watcher's; review 73l, pgwatch 2 and 3: a
    later statement waiting for one again, DROP OWNED's retry with CASCADE, or a stronger
    mode of it in the same transaction, was left), ending the
    lease sessions holding what the revocation drops or alters (review 73b, pgwatch 2: one
    another lease took just after it looked, the statement failing its lock timeout at each
    retry the lease won that window); a lease's session holding a table the lease's own
    objects merely use (a foreign key's) is left, as there (review 44b)."""
    waiting = conn.execute(_WAITING, (pid,)).fetchone()
    if waiting is None:
        return
    if waiting[0] in ("relation", "object"):
        if role is not None:
            _end_lock_holders(conn, pid, role, leases, wait_ms, followed)
        return
    if waiting[0] != "tuple":
        _end(conn, conn.execute(WAITED_ON, (pid, leases)).fetchall(), leases, wait_ms)
        return
    for queued, lease, started, vxid in conn.execute(QUEUED_BEFORE, (leases, pid)).fetchall():
        holders = conn.execute(WAITED_ON, (queued, leases)).fetchall()
        if lease and holders:
            locks.terminate(conn, queued, started, vxid, leases, wait_ms)
        _end(conn, holders, leases, wait_ms)


def _end_lock_holders(
    conn: Any,
    pid: int,
    role: str,
    leases: str,
    wait_ms: int,
    followed: set[tuple[Any, ...]] | None,
) -> None:
    """`locks.end_lock_holders` of `role` once for each relation (schema) and lock mode session
    `pid` waits for in a transaction, that `followed` (then holding it) does not hold yet: its
    holders ended, the statement takes the lock before any later one (the lock's queue) and
    keeps it until its transaction ends. A later transaction of the block waits for it anew,
    behind whoever queued meanwhile (review 73l, pgwatch 2), and so does a stronger mode in
    the same transaction, behind whoever took a weaker one its first lock let by (pgwatch 3):
    followed again, the set growing by one key per relation, mode (eight) and transaction
    waited for, each run bounded by its statement's."""
    seen = set() if followed is None else followed
    waited = set(conn.execute(_WAITED_FOR, (pid,)).fetchall())
    if waited - seen:
        seen.update(waited)
        locks.end_lock_holders(conn, role, leases, wait_ms)


def _end(conn: Any, holders: list[tuple[Any, ...]], leases: str, wait_ms: int) -> None:
    """End each session (roll back each prepared transaction, no pid) of `WAITED_ON`'s rows,
    a session only while it is the lease role's that was read, in the transaction read
    (`locks.terminate`; review 73b, pgwatch 1; review 73l, pgwatch 1)."""
    for holder, gid, started, vxid in holders:
        if holder is None:
            locks.roll_back_prepared(conn, gid, leases, vxid)
        else:
            locks.terminate(conn, holder, started, vxid, leases, wait_ms)


def _watch(
    connect: Callable[[], Any],
    pid: int,
    leases: str,
    wait_ms: int,
    role: str | None,
    done: threading.Event,
) -> None:
    import psycopg

    if done.wait(limits.POSTGRES_LOCK_TIMEOUT_MS / limits.POSTGRES_WATCH_START_DIVISOR / 1000):
        return
    try:
        conn = connect()
    except psycopg.Error:
        return  # nothing watched: the statement fails its lock timeout, retried
    followed: set[tuple[Any, ...]] = set()
    try:
        while not done.is_set():
            end_waited_on(conn, pid, leases, wait_ms, role=role, followed=followed)
            done.wait(limits.POSTGRES_WATCH_POLL_MS / 1000)
    except psycopg.Error:
        return
    finally:
        conn.close()


@contextmanager
def watching(
    connect: Callable[[], Any], pid: int, leases: str, wait_ms: int, role: str | None = None
) -> Iterator[None]:
    """While the block runs its statements in session `pid`, a thread with its own admin
    session (`connect()`, to the same database, opened only if the block runs past the lock
    timeout / `limits.POSTGRES_WATCH_START_DIVISOR`) ends what it waits on every
    `limits.POSTGRES_WATCH_POLL_MS` (`end_waited_on`; the lock holders of `role`, the role
    the block revokes, when it waits for a relation). The block ends when the thread has
    (after a look at most, or its connection's timeout)."""
    done = threading.Event()
    watcher = threading.Thread(
        target=_watch, args=(connect, pid, leases, wait_ms, role, done), name="troth-pg-waits"
    )
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
