"""Review 74g, pgwatch5: the rollback of a lease's prepared transaction as its owner
(troth.secrets.engines.postgres_locks.roll_back_prepared), after review 74b's fixes, attacked
again (PostgreSQL tests: TROTH_REQUIRE_PG=1).

pgwatch5 1: `ROLLBACK PREPARED` of a transaction another session is finishing (its owner's
`COMMIT PREPARED`, or another broker's rollback, waiting for a synchronous standby, or just
running) fails "prepared transaction ... is busy" (SQLSTATE 55000), which left
`roll_back_prepared`: the revocation's watcher stopped on it (the statements after it unwatched,
failing their lock timeout) and `_shut_out` failed the revocation before `NOLOGIN`, the
revoked role logging in until the retry. Being finished, it is left to end, as one already
gone is.

pgwatch5 2: an interrupt (KeyboardInterrupt, a daemon's shutdown) as the `RESET ROLE` after the
rollback is sent (raised before it, or its cancel beating it) left the connection open as the
lease role: the broker keeps its admin connections (`_admin`) across an error, and the next
revocation's statements on it ran as that lease. A connection whose `RESET ROLE` did not come
back is closed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from tests.support.postgres import PgServer
from tests.test_review73l_pgwatch import _ADMIN, _FIRST, _LEASES, _REVOKED, _lease, _roles
from tests.test_review74b_pgwatch4 import _GID as _GID_74B
from tests.test_review74b_pgwatch4 import _Before, interrupted
from troth.secrets.engines import postgres_locks as locks

_GID = "g74g_pgwatch5"
_WAIT_EVENT = "SELECT wait_event FROM pg_stat_activity WHERE pid = %s"
_MEMBER = "SELECT pg_has_role(current_user, %s, 'MEMBER'), current_user"


def _in_sync_rep(watch: Any, session: Any, statement: str, threads: list[Any]) -> bool:
    """Run `statement` in `session` (a thread of its own, added to `threads`); whether it waits
    for a synchronous standby (bounded: it finished first otherwise)."""
    running = threading.Thread(target=session.execute, args=(statement,))
    running.start()
    threads.append(running)
    pid = session.info.backend_pid
    for _ in range(100_000):
        if watch.execute(_WAIT_EVENT, (pid,)).fetchone()[0] == "SyncRep":
            return True
        if not running.is_alive():
            return False
    return False


@contextmanager
def _synchronous_standby(pg_server: PgServer, su: Any, watch: Any) -> Iterator[list[Any]]:
    """A synchronous standby that never comes (commits with `synchronous_commit` on wait for
    it), in force once a probe's commit waits for it; the threads of the statements waiting,
    cancelled (their commits done locally) and joined at the end."""
    threads: list[Any] = []
    probe = pg_server.connect()
    su.execute("CREATE TABLE t74g_probe (a int)")
    su.execute("ALTER SYSTEM SET synchronous_standby_names = 't74g_nobody'")
    su.execute("SELECT pg_reload_conf()")
    try:
        for _ in range(100):  # the checkpointer reads the reloaded setting on its own
            if _in_sync_rep(watch, probe, "INSERT INTO t74g_probe VALUES (1)", threads):
                break
        else:
            pytest.fail("no commit waited for the synchronous standby")
        yield threads
    finally:
        su.execute("ALTER SYSTEM RESET synchronous_standby_names")
        su.execute("SELECT pg_reload_conf()")
        su.execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'"
        )
        for thread in threads:
            thread.join(timeout=10)
        probe.close()
        su.execute("DROP TABLE t74g_probe")


def test_a_prepared_transaction_being_committed_is_left_to_end(pg_server: PgServer) -> None:
    """74g pgwatch5 1: lease `_FIRST`'s prepared transaction holds the revoked lease's table;
    its owner's `COMMIT PREPARED` waits for a synchronous standby as the admin (no superuser)
    rolls it back: "is busy" (55000) left `end_lock_holders` (the watcher stopped on it); it
    is left to end, the connection the admin's, no member of the role."""
    with _roles(pg_server) as su, ExitStack() as stack:
        try:
            _lease(pg_server, _FIRST, stack).execute(f"PREPARE TRANSACTION '{_GID}'")
            owner = _lease(pg_server, _FIRST, stack, lock=False)
            local = "-c synchronous_commit=local"  # the admin's GRANT and REVOKE wait for none
            admin = stack.enter_context(pg_server.connect(user=_ADMIN, options=local))
            watch = stack.enter_context(pg_server.connect(options=local))
            with _synchronous_standby(pg_server, su, watch) as threads:
                assert _in_sync_rep(watch, owner, f"COMMIT PREPARED '{_GID}'", threads)
                locks.end_lock_holders(admin, _REVOKED, _LEASES, 1000)
                assert admin.execute(_MEMBER, (_FIRST,)).fetchone() == (False, _ADMIN)
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)


def test_an_interrupt_before_the_reset_role_leaves_no_connection_as_the_lease(
    pg_server: PgServer,
) -> None:
    """74g pgwatch5 2: lease `_FIRST`'s prepared transaction is rolled back by the admin (no
    superuser) as `_FIRST`; an interrupt comes as the `RESET ROLE` after it is sent: the
    connection, kept by the broker, stayed open as `_FIRST`."""

    class _Closable(_Before):
        def close(self) -> None:
            self.conn.close()

    def stop() -> None:
        raise KeyboardInterrupt

    with _roles(pg_server), ExitStack() as stack:
        try:
            admin = interrupted(pg_server, stack, lambda conn: _Closable(conn, "RESET ROLE", stop))
            assert not pg_server.prepared(pg_server.dbname, _GID_74B)
            assert admin.closed or admin.execute("SELECT current_user").fetchone() == (_ADMIN,)
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID_74B)
