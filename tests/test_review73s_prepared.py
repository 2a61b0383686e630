"""Review 73s, prepared: 73q's rollback of a lease's prepared transaction as its owner reviewed
(troth.secrets.engines.postgres_locks.roll_back_prepared) (PostgreSQL tests: TROTH_REQUIRE_PG=1).

prepared 1: a gid read as one lease's prepared transaction (holding a lock on what the
revocation drops, or its role), rolled back as whichever lease role prepared that gid since.
`roll_back_prepared` re-read the gid's owner and required a lease role's only: the one read
committed (its owner may, from any session) and another lease's transaction (another agent's
writes, holding nothing the revocation needs) prepared under the same gid meanwhile was rolled
back in its place, its writes lost (73q pgwatch3 2, for a lease's instead of an application's).
Only the transaction read is rolled back now (its virtual transaction id, pg_locks').
"""

from __future__ import annotations

from contextlib import ExitStack

from tests.support.postgres import PgServer
from tests.test_review73b_pgwatch import _ReadBefore
from tests.test_review73l_pgwatch import _FIRST, _LEASES, _REVOKED, _SECOND, _lease, _roles
from troth.secrets.engines import postgres_locks as locks

_GID = "g73s_prepared"


def test_a_gid_read_as_a_leases_is_not_rolled_back_as_another_leases(
    pg_server: PgServer,
) -> None:
    """73s prepared 1: LOCK_HOLDERS read lease `_FIRST`'s prepared transaction `_GID` holding
    the revoked lease's table; it committed, and lease `_SECOND` prepared another transaction
    (locking nothing of the revoked lease's) under the same gid before the rollback, which
    rolled it back in its place. Now only the transaction read is rolled back."""
    with _roles(pg_server), ExitStack() as stack:
        try:
            _lease(pg_server, _FIRST, stack).execute(f"PREPARE TRANSACTION '{_GID}'")
            su = stack.enter_context(pg_server.connect())
            read = su.execute(locks.lock_holders(su), (_REVOKED, _LEASES)).fetchall()
            assert [row[1] for row in read] == [_GID]
            pg_server.end_prepared(pg_server.dbname, _GID, "COMMIT")
            other = _lease(pg_server, _SECOND, stack, lock=False)
            other.execute("BEGIN")
            other.execute("SELECT 1")
            other.execute(f"PREPARE TRANSACTION '{_GID}'")
            now = {"SELECT has_table_privilege": [(True,)], locks.LOCK_HOLDERS[:40]: read}
            locks.end_lock_holders(_ReadBefore(su, now), _REVOKED, _LEASES, 1000)
            assert pg_server.prepared(pg_server.dbname, _GID)
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)
