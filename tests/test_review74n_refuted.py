"""Review 74n: attacks on review 74g's fixes to the rollback of a lease's prepared transaction
(troth.secrets.engines.postgres_locks.roll_back_prepared) that did NOT work, kept as passing
tests (PostgreSQL tests: TROTH_REQUIRE_PG=1)."""

from __future__ import annotations

from contextlib import ExitStack

import psycopg
import pytest

from tests.support.postgres import PgServer
from tests.test_review73l_pgwatch import _ADMIN, _FIRST, _LEASES, _REVOKED, _lease, _roles
from tests.test_review74g_pgwatch5 import _in_sync_rep, _synchronous_standby
from troth.secrets.engines import postgres_locks as locks
from troth.secrets.engines.postgres import PostgresEngine
from troth.secrets.lease import SecretValue

_GID = "g74n_refuted"


def test_a_busy_transaction_left_still_fails_what_it_blocks(pg_server: PgServer) -> None:
    """Tried: "is busy" (55000) swallowed lets a revoked lease's prepared hold on what the
    revocation drops stay while the revocation is reported done. Refuted: the transaction
    being finished keeps its locks until it ends, and the statement it blocks (`DROP OWNED`)
    fails its lock timeout, the revocation retried, as it was before 74g. "is busy" is the one
    55000 `ROLLBACK PREPARED` raises (PostgreSQL's LockGXact: another database's is 0A000, not
    the owner's 42501, gone 42704); one of another database is never sent (the look before
    it reads this database's only)."""
    with _roles(pg_server) as su, ExitStack() as stack:
        try:
            _lease(pg_server, _FIRST, stack).execute(f"PREPARE TRANSACTION '{_GID}'")
            owner = _lease(pg_server, _FIRST, stack, lock=False)
            local = "-c synchronous_commit=local"
            admin = stack.enter_context(pg_server.connect(user=_ADMIN, options=local))
            watch = stack.enter_context(pg_server.connect(options=local))
            elsewhere = stack.enter_context(pg_server.connect(dbname="template1"))
            rollback = f"ROLLBACK PREPARED '{_GID}'"
            with pytest.raises(psycopg.errors.FeatureNotSupported):
                elsewhere.execute(rollback)  # "belongs to another database": 0A000
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                admin.execute(rollback)  # "permission denied to finish": 42501
            with _synchronous_standby(pg_server, su, watch) as threads:
                assert _in_sync_rep(watch, owner, f"COMMIT PREPARED '{_GID}'", threads)
                with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
                    watch.execute(rollback)  # "is busy": the 55000 swallowed
                locks.end_lock_holders(admin, _REVOKED, _LEASES, 1000)
                dropping = stack.enter_context(pg_server.connect(options="-c lock_timeout=50"))
                with pytest.raises(psycopg.errors.LockNotAvailable), dropping.transaction():
                    dropping.execute("LOCK TABLE t73l IN ACCESS EXCLUSIVE MODE")
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)


def test_a_connection_closed_at_its_reset_role_is_reopened_by_the_broker(
    pg_server: PgServer,
) -> None:
    """Tried: the admin connection `_reset_role` closes (74g pgwatch5 2) is the broker's cached
    one (`_admin`), and the next revocation failed on it, closed, for good. Refuted: `_admin`
    keeps only a connection neither closed nor broken, and opens a new one when it has none."""
    engine = PostgresEngine(role_prefix="tl_0123abcd_")
    settings = engine.check_settings(
        {
            "host": pg_server.host,
            "port": pg_server.port,
            "dbname": pg_server.dbname,
            "user": pg_server.user,
            "templates": {"read": "pg_monitor"},
        },
        ("read",),
    )
    upstream = SecretValue(pg_server.password.encode())
    try:
        with engine._admin(settings, pg_server.dbname, upstream, "roll back") as first:
            first.close()
        with engine._admin(settings, pg_server.dbname, upstream, "roll back") as second:
            assert second is not first
            assert second.execute("SELECT current_user").fetchone() == (pg_server.user,)
    finally:
        engine.close()
