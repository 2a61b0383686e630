"""Review 74b: attacks on the rollback of a lease's prepared transaction as its owner and the
admin's temporary membership in its role (troth.secrets.engines.postgres_locks) that did not
work, kept as tests (PostgreSQL tests: TROTH_REQUIRE_PG=1; PostgreSQL 15)."""

from __future__ import annotations

from contextlib import ExitStack

from tests.support.postgres import PgServer
from tests.test_review73l_pgwatch import _ADMIN, _FIRST, _LEASES, _REVOKED, _lease, _roles
from tests.test_review74b_pgwatch4 import _Before, _drop
from troth.secrets.engines import postgres_locks as locks

_GIDS = ("g74b_one", "g74b_two", "g74b_app")
_MEMBER = "SELECT pg_has_role(current_user, %s, 'MEMBER'), current_user"
_LEFT = "SELECT gid FROM pg_prepared_xacts WHERE gid = ANY(%s) ORDER BY gid"


def test_a_membership_the_admin_had_is_neither_granted_nor_revoked(pg_server: PgServer) -> None:
    """Tried: the admin already a member of the lease role (its membership left by a crash, or
    given by an operator), the rollback's REVOKE then taking a membership it did not add. On
    PostgreSQL 15 a member may always `SET ROLE`: nothing is granted, nothing revoked."""
    with _roles(pg_server), ExitStack() as stack:
        try:
            _lease(pg_server, _FIRST, stack).execute(f"PREPARE TRANSACTION '{_GIDS[0]}'")
            admin = stack.enter_context(pg_server.connect(user=_ADMIN))
            admin.execute(f"GRANT {_FIRST} TO CURRENT_USER")
            locks.end_lock_holders(admin, _REVOKED, _LEASES, 1000)
            assert not pg_server.prepared(pg_server.dbname, _GIDS[0])
            assert admin.execute(_MEMBER, (_FIRST,)).fetchone() == (True, _ADMIN)
        finally:
            pg_server.end_prepared(pg_server.dbname, _GIDS[0])


def test_two_of_a_leases_and_an_applications_prepared_transactions(pg_server: PgServer) -> None:
    """Tried: two prepared transactions of one lease role holding the revoked lease's table
    (one of them with a gid crafted to end the statement and roll back another: a quote, a
    semicolon, a backslash), and an application's (a role no lease pattern matches) holding
    it too: both of the lease's are rolled back, each by its xid, the application's is left
    (review 69w, wave4b 1), the crafted gid a literal."""
    from psycopg import sql

    app = "app74b_refuted"
    crafted = "g74b_one'; ROLLBACK PREPARED 'g74b_app'; --\\"
    with _roles(pg_server) as su, ExitStack() as stack:
        su.execute(f"CREATE ROLE {app} LOGIN PASSWORD 'x'; GRANT SELECT ON t73l TO {app}")
        stack.callback(_drop, pg_server, app)
        gids = [crafted, _GIDS[1], _GIDS[2]]
        try:
            for role, gid in zip((_FIRST, _FIRST, app), gids, strict=True):
                prepared = _lease(pg_server, role, stack)
                prepared.execute(sql.SQL("PREPARE TRANSACTION {}").format(sql.Literal(gid)))
            with pg_server.connect(user=_ADMIN) as admin:
                locks.end_lock_holders(admin, _REVOKED, _LEASES, 1000)
                assert admin.execute(_LEFT, (gids,)).fetchall() == [(_GIDS[2],)]
                assert admin.execute(_MEMBER, (_FIRST,)).fetchone() == (False, _ADMIN)
        finally:
            for gid in gids:
                pg_server.end_prepared(pg_server.dbname, gid)


def test_two_admin_sessions_rolling_back_one_transaction_at_once(pg_server: PgServer) -> None:
    """Tried: two admin sessions (two brokers) rolling back the same lease's prepared
    transaction at once, one granting itself the role while the other holds the membership it
    granted and revokes it after: neither fails, neither leaves the membership, the connection
    as the lease role, or another transaction rolled back."""
    with _roles(pg_server), ExitStack() as stack:
        try:
            _lease(pg_server, _FIRST, stack).execute(f"PREPARE TRANSACTION '{_GIDS[0]}'")
            first = stack.enter_context(pg_server.connect(user=_ADMIN))
            second = stack.enter_context(pg_server.connect(user=_ADMIN))

            def the_other_broker() -> None:  # between `first`'s GRANT and its rollback
                locks.end_lock_holders(second, _REVOKED, _LEASES, 1000)
                assert not pg_server.prepared(pg_server.dbname, _GIDS[0])
                assert second.execute("SELECT current_user").fetchone() == (_ADMIN,)

            hooked = _Before(first, "ROLLBACK PREPARED", the_other_broker)
            locks.end_lock_holders(hooked, _REVOKED, _LEASES, 1000)
            for admin in (first, second):
                assert admin.execute(_MEMBER, (_FIRST,)).fetchone() == (False, _ADMIN)
        finally:
            pg_server.end_prepared(pg_server.dbname, _GIDS[0])


def test_a_leases_prepared_hold_on_its_own_role_does_not_stop_the_grant(
    pg_server: PgServer,
) -> None:
    """Tried: the lease's prepared transaction (holding the revoked lease's table) also holds
    its own role's row (its password changed) and a lock on its role (ALTER DEFAULT PRIVILEGES
    ... TO itself), for the admin's GRANT of the role to itself to wait its lock timeout and
    fail out of the watcher's loop. The GRANT waits for neither: rolled back."""
    with _roles(pg_server), ExitStack() as stack:
        try:
            lease = _lease(pg_server, _FIRST, stack)
            lease.execute(f"ALTER ROLE {_FIRST} PASSWORD 'x'")
            lease.execute(f"ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO {_FIRST}")
            lease.execute(f"PREPARE TRANSACTION '{_GIDS[0]}'")
            admin = stack.enter_context(pg_server.connect(user=_ADMIN))
            admin.execute("SET lock_timeout = 500")  # bounded if it did wait
            locks.end_lock_holders(admin, _REVOKED, _LEASES, 1000)
            assert not pg_server.prepared(pg_server.dbname, _GIDS[0])
            assert admin.execute(_MEMBER, (_FIRST,)).fetchone() == (False, _ADMIN)
        finally:
            pg_server.end_prepared(pg_server.dbname, _GIDS[0])


def test_an_admin_refused_the_grant_is_no_error(pg_server: PgServer) -> None:
    """Tried: an admin that may not grant itself the lease role (no CREATEROLE), its REVOKE,
    made now even when the GRANT did not answer (pgwatch4 4), refused too and raised out of
    `finally`. Refused, it is no error: the prepared transaction is left (the statement it
    blocks fails its lock timeout, retried), the connection the admin's."""
    weak = "admin74b_weak"
    with _roles(pg_server) as su, ExitStack() as stack:
        su.execute(f"CREATE ROLE {weak} LOGIN PASSWORD '{pg_server.password}'")
        stack.callback(su.execute, f"DROP ROLE {weak}")
        try:
            _lease(pg_server, _FIRST, stack).execute(f"PREPARE TRANSACTION '{_GIDS[0]}'")
            admin = stack.enter_context(pg_server.connect(user=weak))
            locks.end_lock_holders(admin, _REVOKED, _LEASES, 1000)
            assert pg_server.prepared(pg_server.dbname, _GIDS[0])
            assert admin.execute(_MEMBER, (_FIRST,)).fetchone() == (False, weak)
        finally:
            pg_server.end_prepared(pg_server.dbname, _GIDS[0])
