"""Review 74r, pgwatch7: review 74n's resend (`_twice`) of the `RESET ROLE` and of the admin's
REVOKE after a lease's prepared rollback (troth.secrets.engines.postgres_locks), attacked
(PostgreSQL tests: TROTH_REQUIRE_PG=1).

pgwatch7 1: an interrupt (KeyboardInterrupt, SystemExit: a daemon's shutdown) after which
psycopg closed the connection (a second Ctrl-C while it waited for the cancelled statement's
end, or a cancel the server did not answer within its 5 s) was replaced by the resend's
`OperationalError` ("the connection is closed"), which the engine turns into a failed
revocation (SecretError): the shutdown was lost, the sweep going on with the next lease.
psycopg itself never lets an error replace the interrupt it handles; nor does `_twice` now.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import pytest

from tests.support.postgres import PgServer
from tests.test_review73l_pgwatch import _roles
from tests.test_review74b_pgwatch4 import _GID, _Before, interrupted


class _Cut(_Before):
    """`_Before` whose `then()` closes the connection (psycopg's, once a second interrupt cut
    its wait for the cancelled statement) and raises KeyboardInterrupt; closable."""

    def __init__(self, conn: Any, start: str) -> None:
        super().__init__(conn, start, self._cut)

    def _cut(self) -> None:
        self.conn.close()
        raise KeyboardInterrupt

    def close(self) -> None:
        self.conn.close()


@pytest.mark.parametrize("start", ["RESET ROLE", "REVOKE"])
def test_an_interrupt_that_closed_the_connection_is_raised(pg_server: PgServer, start: str) -> None:
    """74r pgwatch7 1: the interrupt as `start` is sent left the connection closed: the resend's
    OperationalError was raised in its place (`interrupted` expects the KeyboardInterrupt)."""
    with _roles(pg_server), ExitStack() as stack:
        try:
            assert interrupted(pg_server, stack, lambda conn: _Cut(conn, start)).closed
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)
