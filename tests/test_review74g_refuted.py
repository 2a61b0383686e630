"""Review 74g: attacks on the rollback of a lease's prepared transaction as its owner and the
admin's temporary membership in its role (troth.secrets.engines.postgres_locks), after review
74b's fixes, that did not work, kept as tests (PostgreSQL tests: TROTH_REQUIRE_PG=1;
PostgreSQL 15)."""

from __future__ import annotations

import threading
from contextlib import ExitStack

import pytest

from tests.support.postgres import PgServer
from tests.test_review73l_pgwatch import _ADMIN, _FIRST, _LEASES, _REVOKED, _lease, _roles
from tests.test_review74b_pgwatch4 import _Before
from tests.test_review74g_pgwatch5 import _synchronous_standby
from troth.secrets.engines import postgres_locks as locks

_GID = "g74g_refuted"
_MEMBERSHIPS = (
    "SELECT r.rolname, m.admin_option FROM pg_auth_members m"
    " JOIN pg_roles r ON r.oid = m.roleid WHERE m.member = %s::regrole ORDER BY r.rolname"
)


def _rolled_back_as(pg_server: PgServer, admin_user: str) -> list[tuple[str, bool]]:
    """Lease `_FIRST`'s prepared transaction `_GID` (holding the revoked lease's table) rolled
    back by `end_lock_holders` as `admin_user`; the admin's direct memberships after it."""
    with ExitStack() as stack:
        try:
            _lease(pg_server, _FIRST, stack).execute(f"PREPARE TRANSACTION '{_GID}'")
            admin = stack.enter_context(pg_server.connect(user=admin_user))
            locks.end_lock_holders(admin, _REVOKED, _LEASES, 1000)
            assert not pg_server.prepared(pg_server.dbname, _GID)
            assert admin.execute("SELECT current_user").fetchone() == (admin_user,)
            return list(admin.execute(_MEMBERSHIPS, (admin_user,)).fetchall())
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)


def test_a_membership_with_admin_option_another_role_gave_is_kept(pg_server: PgServer) -> None:
    """Tried: the admin a member of the lease role WITH ADMIN OPTION, given by another role
    (the superuser), the cleanup REVOKE (now set up before the GRANT is sent) then taking a
    membership troth did not add. A member may `SET ROLE` (PostgreSQL 15): no GRANT is sent,
    no REVOKE made, the membership and its admin option kept."""
    with _roles(pg_server) as su:
        su.execute(f"GRANT {_FIRST} TO {_ADMIN} WITH ADMIN OPTION")
        kept = _rolled_back_as(pg_server, _ADMIN)
        assert (_FIRST, True) in kept


def test_an_indirect_membership_is_neither_widened_nor_revoked(pg_server: PgServer) -> None:
    """Tried: the admin a member of the lease role through a group another role made it a
    member of (SET ROLE then allowed, or refused and the GRANT a second, direct membership
    the REVOKE takes along with the group's). Allowed: no direct membership is added or taken,
    the group's kept."""
    group = "group74g_refuted"
    with _roles(pg_server) as su, ExitStack() as stack:
        su.execute(f"CREATE ROLE {group}; GRANT {_FIRST} TO {group}; GRANT {group} TO {_ADMIN}")
        stack.callback(su.execute, f"DROP ROLE {group}")
        assert _rolled_back_as(pg_server, _ADMIN) == [(group, False), ("pg_signal_backend", False)]


def test_the_role_set_is_the_owners_exact_name(pg_server: PgServer) -> None:
    """Tried: a lease pattern matching a name that needs quoting (a case-insensitive one) and
    an application's role named as the lease's in capitals, `SET ROLE` of its unquoted name
    then being the lease's (folded to lower case), refused the application's transaction and
    swallowed as "insufficient privilege". The owner is an identifier, quoted: the role set is
    the application's, its transaction the one rolled back, the lease's left."""
    from psycopg import sql

    app = _FIRST.upper()
    capital = sql.Identifier(app)
    with _roles(pg_server) as su, ExitStack() as stack:
        su.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'x'").format(capital))
        su.execute(sql.SQL("GRANT SELECT ON t73l TO {}").format(capital))
        stack.callback(_drop_quoted, pg_server, app)
        try:
            _lease(pg_server, app, stack).execute(f"PREPARE TRANSACTION '{_GID}'")
            _lease(pg_server, _FIRST, stack).execute(f"PREPARE TRANSACTION '{_GID}_lease'")
            with pg_server.connect() as admin:
                (xid,) = admin.execute(
                    "SELECT transaction::text FROM pg_prepared_xacts WHERE gid = %s", (_GID,)
                ).fetchone()
                locks.roll_back_prepared(admin, _GID, "(?i)" + _LEASES, xid)
            assert not pg_server.prepared(pg_server.dbname, _GID)
            assert pg_server.prepared(pg_server.dbname, _GID + "_lease")
        finally:
            for gid in (_GID, _GID + "_lease"):
                pg_server.end_prepared(pg_server.dbname, gid)


def _drop_quoted(pg_server: PgServer, role: str) -> None:
    """Drop `role` (a name that needs quoting), its sessions ended."""
    from psycopg import sql

    with pg_server.connect() as clean:
        ended = "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = %s"
        clean.execute(ended, (role,))
        name = sql.Identifier(role)
        clean.execute(sql.SQL("REVOKE ALL ON t73l FROM {}; DROP ROLE {}").format(name, name))


def test_a_leases_prepared_hold_on_the_admins_role_does_not_stop_its_grant(
    pg_server: PgServer,
) -> None:
    """Tried: the lease's prepared transaction (holding the revoked lease's table) also holding
    a lock on the admin's role (`ALTER DEFAULT PRIVILEGES ... TO` it: any role may) for the
    admin's GRANT or REVOKE of the lease role to itself to fail its lock timeout, an error
    other than "insufficient privilege" or "role does not exist" leaving the connection as
    the lease role or the admin a member of it. Neither waits: rolled back, no membership."""
    with _roles(pg_server), ExitStack() as stack:
        try:
            lease = _lease(pg_server, _FIRST, stack)
            lease.execute(f"ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO {_ADMIN}")
            lease.execute(f"PREPARE TRANSACTION '{_GID}'")
            admin = stack.enter_context(pg_server.connect(user=_ADMIN))
            admin.execute("SET lock_timeout = 500")  # bounded if it did wait
            locks.end_lock_holders(admin, _REVOKED, _LEASES, 1000)
            assert not pg_server.prepared(pg_server.dbname, _GID)
            member = "SELECT pg_has_role(current_user, %s, 'MEMBER'), current_user"
            assert admin.execute(member, (_FIRST,)).fetchone() == (False, _ADMIN)
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)


def test_the_owners_look_sees_the_transaction_as_the_admin_does(pg_server: PgServer) -> None:
    """Tried: the look as the owner (after `SET ROLE`) seeing pg_prepared_xacts filtered to
    its own rows or to none (another role's hidden), the check passing or failing unlike the
    admin's. The view is every role's, unfiltered: a lease role reads another's prepared
    transaction as the admin does."""
    with _roles(pg_server), ExitStack() as stack:
        try:
            _lease(pg_server, _FIRST, stack).execute(f"PREPARE TRANSACTION '{_GID}'")
            reader = stack.enter_context(pg_server.connect(user=_ADMIN))
            look = "SELECT gid, owner::text FROM pg_prepared_xacts WHERE gid = %s"
            as_admin = reader.execute(look, (_GID,)).fetchall()
            other = f"tl_731a0000_{'c' * 32}"  # _SECOND, a lease role with no transaction
            reader.execute(f"GRANT {other} TO CURRENT_USER; SET ROLE {other}")
            try:
                assert reader.execute(look, (_GID,)).fetchall() == as_admin == [(_GID, _FIRST)]
            finally:
                reader.execute(f"RESET ROLE; REVOKE {other} FROM CURRENT_USER")
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)


def test_a_synchronous_standby_that_never_answers_ends_in_no_error(pg_server: PgServer) -> None:
    """Tried: the statement timeout ending the admin's `ROLLBACK PREPARED` while it waits for a
    synchronous standby that never answers (an error other than "insufficient privilege" or
    "role does not exist", the connection left as the lease role). The wait cancelled, the
    rollback is done (a warning: done locally) and nothing fails: rolled back, the connection
    the admin's. (A commit's wait, the GRANT's of an admin that is no superuser, is no
    statement's: the statement timeout does not end it, as for every write of the broker's.)"""
    with _roles(pg_server) as su, ExitStack() as stack:
        try:
            _lease(pg_server, _FIRST, stack).execute(f"PREPARE TRANSACTION '{_GID}'")
            local = "-c synchronous_commit=local"
            watch = stack.enter_context(pg_server.connect(options=local))
            admin = stack.enter_context(pg_server.connect(options="-c statement_timeout=200"))
            look = "SELECT transaction::text FROM pg_prepared_xacts WHERE gid = %s"
            (xid,) = watch.execute(look, (_GID,)).fetchone()
            failed: list[BaseException] = []

            def roll_back() -> None:
                try:
                    locks.roll_back_prepared(admin, _GID, _LEASES, xid)
                except BaseException as exc:  # reported below
                    failed.append(exc)

            with _synchronous_standby(pg_server, su, watch) as threads:
                rolling = threading.Thread(target=roll_back)
                threads.append(rolling)
                rolling.start()
                rolling.join(timeout=10)  # bounded: the standby's end cancels it otherwise
                assert not rolling.is_alive()
            assert failed == []
            assert not pg_server.prepared(pg_server.dbname, _GID)
            assert admin.execute("SELECT current_user").fetchone() == (pg_server.user,)
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)


def test_a_connection_lost_before_the_revoke_is_used_no_more(pg_server: PgServer) -> None:
    """Tried: the admin's session ended as its REVOKE of the lease role is sent, leaving the
    connection as the lease role for the next statement. It is ended: `RESET ROLE` ran before,
    the error (the connection's) leaves `roll_back_prepared` and the connection is broken,
    never reused (the broker's `_admin` and the watcher drop it); the membership left goes
    with the role (as a crash's: review 73s refuted)."""
    import psycopg

    with _roles(pg_server) as su, ExitStack() as stack:
        try:
            _lease(pg_server, _FIRST, stack).execute(f"PREPARE TRANSACTION '{_GID}'")
            admin = stack.enter_context(pg_server.connect(user=_ADMIN))
            pid = admin.info.backend_pid

            def end_it() -> None:
                assert admin.execute("SELECT current_user").fetchone() == (_ADMIN,)
                su.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))

            with pytest.raises(psycopg.OperationalError):
                locks.end_lock_holders(_Before(admin, "REVOKE", end_it), _REVOKED, _LEASES, 1000)
            assert admin.broken
            assert not pg_server.prepared(pg_server.dbname, _GID)
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)
