"""Review 73s: attacks on 73q's rollback of a lease's prepared transaction as its owner
(troth.secrets.engines.postgres_locks.roll_back_prepared) that did not work, kept as tests
(PostgreSQL tests: TROTH_REQUIRE_PG=1). The admin (no superuser) grants itself the lease role
for the rollback: the membership goes admin -> lease, never the other way."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import pytest

from tests.support.postgres import PgServer
from tests.test_review73l_pgwatch import _ADMIN, _FIRST, _LEASES, _REVOKED, _lease, _roles
from troth.secrets.engines import postgres_locks as locks

_GID = "g73s_refuted"
_MEMBER = "SELECT pg_has_role(current_user, %s, 'MEMBER'), current_user"


class _AfterGrant:
    """The admin's connection; after its `GRANT` of a role to itself, `then(statement)` runs
    before the admin's next statement (and may raise in its place)."""

    def __init__(self, conn: Any, then: Any) -> None:
        self.conn, self.then, self.granted = conn, then, False

    def execute(self, statement: Any, params: Any = None) -> Any:
        text = statement if isinstance(statement, str) else statement.as_string(self.conn)
        if self.granted:
            self.granted = False
            self.then(text)
        result = self.conn.execute(statement, params)
        self.granted = text.startswith("GRANT")
        return result


def _prepared_lock(pg_server: PgServer, stack: ExitStack) -> Any:
    """Lease `_FIRST`'s transaction locking the revoked lease's table, prepared as `_GID`;
    the admin's session (no superuser)."""
    _lease(pg_server, _FIRST, stack).execute(f"PREPARE TRANSACTION '{_GID}'")
    return stack.enter_context(pg_server.connect(user=_ADMIN))


def test_the_lease_may_not_revoke_the_admins_membership_before_its_set_role(
    pg_server: PgServer,
) -> None:
    """Tried: lease `_FIRST`, logged in, revokes its role from the admin between the admin's
    GRANT and SET ROLE (up to PostgreSQL 15.0 a role's session user administered it), leaving
    its prepared lock for good (a REVOKE loop). PostgreSQL 15.18 refuses it (the admin option
    is needed), and so a GRANT of itself to the admin: the rollback goes through."""
    import psycopg

    with _roles(pg_server), ExitStack() as stack:
        try:
            admin = _prepared_lock(pg_server, stack)
            lease = _lease(pg_server, _FIRST, stack, lock=False)
            refused = []

            def revoke(_: str) -> None:
                for statement in (f"REVOKE {_FIRST} FROM {_ADMIN}", f"GRANT {_FIRST} TO {_ADMIN}"):
                    with pytest.raises(psycopg.errors.InsufficientPrivilege):
                        lease.execute(statement)
                    refused.append(statement)

            locks.end_lock_holders(_AfterGrant(admin, revoke), _REVOKED, _LEASES, 1000)
            assert len(refused) == 2
            assert not pg_server.prepared(pg_server.dbname, _GID)
            assert admin.execute(_MEMBER, (_FIRST,)).fetchone() == (False, _ADMIN)
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)


def test_a_failed_rollback_leaves_the_admins_connection_as_the_admin(pg_server: PgServer) -> None:
    """Tried: `ROLLBACK PREPARED` failing with an error it does not swallow (the statement
    cancelled: a busy gid, once such an error, is left since review 74g, pgwatch5 1), the
    admin's kept connection left as the lease role (its later statements run as the lease)
    and a member of it. `RESET ROLE` and the REVOKE run in `finally`."""
    import psycopg

    with _roles(pg_server), ExitStack() as stack:
        try:
            admin = _prepared_lock(pg_server, stack)

            def before_set_role(text: str) -> None:
                assert text.startswith("SET ROLE")
                assert admin.execute("SELECT current_user").fetchone() == (_ADMIN,)

            class _Busy(_AfterGrant):
                def execute(self, statement: Any, params: Any = None) -> Any:
                    text = statement if isinstance(statement, str) else statement.as_string(admin)
                    if text.startswith("ROLLBACK PREPARED"):
                        assert admin.execute(_MEMBER, (_FIRST,)).fetchone() == (True, _FIRST)
                        raise psycopg.errors.QueryCanceled("canceling statement")
                    return super().execute(statement, params)

            with pytest.raises(psycopg.errors.QueryCanceled):
                locks.end_lock_holders(_Busy(admin, before_set_role), _REVOKED, _LEASES, 1000)
            assert admin.execute(_MEMBER, (_FIRST,)).fetchone() == (False, _ADMIN)
            assert pg_server.prepared(pg_server.dbname, _GID)
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)


def test_a_membership_left_by_a_crash_gives_the_lease_nothing_and_goes_with_its_role(
    pg_server: PgServer,
) -> None:
    """Tried: the admin's membership in the lease role left by a crash between the GRANT and
    the REVOKE (the revocation REVOKING meanwhile), used by the lease: it goes admin -> lease,
    the lease is no member of the admin's role and may not take it (SET ROLE); the next
    rollback runs as the role, leaving the connection as the admin; a role's DROP takes the
    memberships in it with it."""
    import psycopg

    dropped = "tl_73s00000_" + "d" * 32
    with _roles(pg_server) as su, ExitStack() as stack:
        try:
            admin = _prepared_lock(pg_server, stack)
            su.execute(f"CREATE ROLE {dropped}")
            for role in (_FIRST, dropped):  # the crash: never revoked
                admin.execute(f"GRANT {role} TO CURRENT_USER")
            lease = _lease(pg_server, _FIRST, stack, lock=False)
            assert lease.execute(_MEMBER, (_ADMIN,)).fetchone() == (False, _FIRST)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                lease.execute(f"SET ROLE {_ADMIN}")
            locks.end_lock_holders(admin, _REVOKED, _LEASES, 1000)
            assert not pg_server.prepared(pg_server.dbname, _GID)
            assert admin.execute("SELECT current_user").fetchone() == (_ADMIN,)
            su.execute(f"DROP ROLE {dropped}")
            held = "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
            held += " WHERE m.member = %s::regrole AND r.rolname ~ %s"
            assert su.execute(held, (_ADMIN, _LEASES)).fetchall() == [(_FIRST,)]
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)
