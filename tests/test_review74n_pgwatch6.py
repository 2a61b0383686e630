"""Review 74n, pgwatch6: the rollback of a lease's prepared transaction as its owner
(troth.secrets.engines.postgres_locks.roll_back_prepared), after review 74g's fixes, attacked
again (PostgreSQL tests: TROTH_REQUIRE_PG=1).

pgwatch6 1: an interrupt (KeyboardInterrupt, a daemon's shutdown) as the `RESET ROLE` after the
rollback is sent closed the connection (74g pgwatch5 2) and skipped the admin's REVOKE of its
temporary membership: an admin that is no superuser stayed a member of the lease's role,
another live lease's for the lock holders (the leak review 74b, pgwatch4 4 closed for the
GRANT). psycopg cancels the statement it was interrupted in and reads its end, leaving the
connection usable: `RESET ROLE` is sent once more, the membership revoked, then the interrupt
raised; the connection is closed only if that second `RESET ROLE` fails too.

pgwatch6 2: the same interrupt as the REVOKE itself is sent left the membership too: it is
sent once more before the interrupt is raised.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from tests.support.postgres import PgServer
from tests.test_review73l_pgwatch import _ADMIN, _FIRST, _roles
from tests.test_review74b_pgwatch4 import _GID, _Before, interrupted

_MEMBER = "SELECT pg_has_role(%s, %s, 'MEMBER')"


def _stop() -> None:
    raise KeyboardInterrupt


def _left_member(pg_server: PgServer, start: str, wrap: Any = _Before) -> tuple[bool, Any]:
    """Lease `_FIRST`'s prepared transaction rolled back by the admin (no superuser) on its
    connection as `wrap`ped, an interrupt raised as its statement starting with `start` is
    sent: whether the admin is still a member of `_FIRST` (read by the superuser), and the
    connection's current user (None: closed)."""
    with _roles(pg_server) as su, ExitStack() as stack:
        try:
            admin = interrupted(pg_server, stack, lambda conn: wrap(conn, start, _stop))
            assert not pg_server.prepared(pg_server.dbname, _GID)
            current = None if admin.closed else admin.execute("SELECT current_user").fetchone()
            return su.execute(_MEMBER, (_ADMIN, _FIRST)).fetchone()[0], current
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)


def test_an_interrupt_at_the_reset_role_leaves_no_membership(pg_server: PgServer) -> None:
    """74n pgwatch6 1: an interrupt as the `RESET ROLE` after the rollback is sent: the
    connection was closed and the REVOKE skipped, the admin left a member of `_FIRST`'s role."""
    assert _left_member(pg_server, "RESET ROLE") == (False, (_ADMIN,))


class _Failing(_Before):
    """`_Before`, its `then()` run before every statement starting with `start`; closable."""

    def execute(self, statement: Any, params: Any = None) -> Any:
        text = statement if isinstance(statement, str) else statement.as_string(self.conn)
        if text.startswith(self.start):
            assert self.then is not None
            self.then()
        return self.conn.execute(statement, params)

    def close(self) -> None:
        self.conn.close()


def test_a_reset_role_failing_twice_closes_the_connection(pg_server: PgServer) -> None:
    """74n pgwatch6 1 (its bound): every `RESET ROLE` interrupted: the connection, still the
    lease role's, is closed (74g pgwatch5 2), not kept by the broker."""
    assert _left_member(pg_server, "RESET ROLE", _Failing)[1] is None


def test_an_interrupt_at_the_revoke_leaves_no_membership(pg_server: PgServer) -> None:
    """74n pgwatch6 2: an interrupt as the admin's REVOKE of its temporary membership is sent:
    the admin was left a member of `_FIRST`'s role."""
    assert _left_member(pg_server, "REVOKE") == (False, (_ADMIN,))
