"""Review 75o, refuted: attacks on 75i's PostgreSQL revocation fixes that did not work (after
pglast3's fix: the members ended are stored with the REVOKEs, no re-grant; PostgreSQL tests:
TROTH_REQUIRE_PG=1).

Refuted 1: the node killed (its admin session ended by the server) or interrupted in the
REVOKEs' transaction, as the member's sessions are first ended: the server rolls the REVOKEs
back, the lease stays REVOKING, and the retry ends the member's session acting as the lease
before `DROP ROLE` (no prepared transaction left behind a REVOKED lease).

Refuted 2: a listed database that takes no connection (`ALLOW_CONNECTIONS false`, as one
dropped) when a member's session does not end: the strip (75i pglast2 1) takes the lease's
privilege in the others all the same, the lease stays REVOKING (never REVOKED with its role
there) while the database takes no connection, and is REVOKED once it does.

Refuted 3: the lease, or a member's session acting as it, erasing the stored members (its
role's comment): refused (COMMENT ON ROLE is an administrator's).

Refuted 4: a stored member dropped and another role made under its name: the retry does not
end the new role's sessions (the note keeps oids, never names).

Refuted 5: a lease holding a lock on the revoked role (a grant to it recorded in a transaction
it keeps open, review 69r leases 5) to make the note's `COMMENT ON ROLE` wait its lock timeout
at every retry: the two locks do not conflict.

Refuted 6 (74u's "interrupt at every statement", and a kill): the admin's session interrupted,
or ended by the server (a killed node), before or after any statement `revoke_members` sends
(an ending counted as one): a retry always ends the member's sessions (the membership kept by
the rollback, or stored in the note).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import PgServer
from tests.test_review73l_pgwatch import _ADMIN, _FIRST, _REVOKED, _SECOND, _roles
from tests.test_review74u_refuted import _Nth
from tests.test_review75b_pglast import acting_as, app, ending, grant_chain, scene
from tests.test_review75o_pglast3 import ending_stops
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    OrdersDb,
    login,
    now,
    orders,
    world,
)
from troth.errors import SecretError, SecretFailure
from troth.secrets import LeaseState
from troth.secrets.book import REVOKE_RETRY_FIRST, REVOKE_RETRY_MAX
from troth.secrets.engines import postgres_locks as locks


@pytest.mark.parametrize("kill", [True, False], ids=["killed", "interrupted"])
def test_a_stop_in_the_revokes_transaction_keeps_no_prepared_transaction(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    kill: bool,
) -> None:
    """Refuted 1: an application member's session acting as the lease; the first ending of
    the member's sessions (in the REVOKEs' transaction) stopped by the node's end or an
    interrupt: REVOKING, and the retry leaves no prepared transaction behind a REVOKED lease."""
    with scene(tmp_path, world, orders, 1, app()) as made:
        grant_chain(orders, [made.user(0), made.apps[0]])
        sessions = [acting_as(orders, made.credential(made.apps[0]), made.user(0))]
        ending_stops(made, orders, sessions, monkeypatch, nth=0, kill=kill)
        with sessions[0] as session:
            made.keeps_no_orphan(session, monkeypatch)


def test_a_listed_database_taking_no_connection_leaves_the_lease_revoking(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Refuted 2: a second listed database made to take no connection; a member's session does
    not end: the member acting as the lease may not write `orders`, the lease REVOKING with
    its role there until the database takes connections again, then REVOKED."""
    other = f"x75o_{uuid.uuid4().hex[:8]}"
    with orders.server.connect() as su:
        su.execute(f"CREATE DATABASE {other}")
    try:
        with scene(tmp_path, world, orders, 1, app(), databases=[other]) as made:
            role, name = made.user(0), made.apps[0]
            grant_chain(orders, [role, name])
            with orders.server.connect() as su:
                su.execute(f"ALTER DATABASE {other} ALLOW_CONNECTIONS false")
                ended = "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                su.execute(ended + " WHERE datname = %s", (other,))  # the broker's kept one
            made.fails_ending(monkeypatch, ending(name, lambda: True))
            with login(orders, made.credential(name)) as session:
                session.execute(psycopg.sql.SQL("SET ROLE {}").format(psycopg.sql.Identifier(role)))
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    session.execute("INSERT INTO orders VALUES (9993, 1)")
            made.broker.sweep(now() + 2 * REVOKE_RETRY_FIRST)  # the member's session ended
            assert made.state() is LeaseState.REVOKING
            assert role in orders.lease_roles()
            with orders.server.connect() as su:
                su.execute(f"ALTER DATABASE {other} ALLOW_CONNECTIONS true")
            made.broker.sweep(now() + 2 * REVOKE_RETRY_MAX)
            assert made.state() is LeaseState.REVOKED
            assert role not in orders.lease_roles()
    finally:
        with orders.server.connect() as su:
            su.execute(f"DROP DATABASE IF EXISTS {other} WITH (FORCE)")


def test_the_lease_may_not_erase_the_stored_members(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """Refuted 3: the lease's own session, and an application member's acting as it, comment
    on the lease's role: refused."""
    with scene(tmp_path, world, orders, 1, app()) as made:
        role, name = made.user(0), made.apps[0]
        grant_chain(orders, [role, name])
        comment = psycopg.sql.SQL("COMMENT ON ROLE {} IS ''").format(psycopg.sql.Identifier(role))
        with (
            login(orders, made.credential(role)) as lease,
            acting_as(orders, made.credential(name), role) as member,
        ):
            member.execute("ROLLBACK")
            for session in (lease, member):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    session.execute(comment)


@pytest.mark.parametrize(
    ("remade", "admin"),
    [(True, False), (False, False), (False, True)],
    ids=["remade", "kept", "kept-createrole-admin"],
)
def test_a_role_made_under_a_stored_members_name_is_not_ended(
    pg_server: PgServer, remade: bool, admin: bool
) -> None:
    """Refuted 4: `_REVOKED` granted to a role whose second ending fails (stored); that role
    dropped and made again under its name: the retry ends no session of it (kept: it ends
    the stored member's, twice; stored by an admin that is no superuser, CREATEROLE, too)."""
    member = f"m75o_{uuid.uuid4().hex[:8]}"
    with _roles(pg_server) as su:
        su.execute(f"CREATE ROLE {member}; GRANT {_REVOKED} TO {member}")
        try:
            ended: list[str] = []

            def end(role: str) -> None:
                if ended.count(role) == 1:
                    raise SecretError(SecretFailure.ENGINE_FAILED, "a session did not end")
                ended.append(role)

            user = {"user": _ADMIN} if admin else {}
            with pg_server.connect(**user) as conn, pytest.raises(SecretError):
                locks.revoke_members(conn, _REVOKED, end)
            if remade:
                su.execute(f"DROP ROLE {member}; CREATE ROLE {member}")
            again: list[str] = []
            locks.revoke_members(su, _REVOKED, again.append)
            assert again == ([] if remade else [member, member])
        finally:
            su.execute(f"DROP ROLE IF EXISTS {member}")


def test_a_lock_on_the_role_does_not_hold_the_note(pg_server: PgServer) -> None:
    """Refuted 5: lease `_FIRST` records a grant to `_REVOKED` in a transaction it keeps open
    (`ALTER DEFAULT PRIVILEGES ... TO`: a lock on the role, review 69r leases 5) as
    `revoke_members` stores the note (`COMMENT ON ROLE`): not waited on, the member ended."""
    with _roles(pg_server) as su, pg_server.connect(user=_FIRST, password="x") as lease:
        su.execute(f"GRANT {_REVOKED} TO {_SECOND}")
        lease.execute("BEGIN")
        lease.execute(f"ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO {_REVOKED}")
        try:
            su.execute("SET lock_timeout = 1000")
            ended: list[str] = []
            locks.revoke_members(su, _REVOKED, ended.append)
            assert ended == [_SECOND, _SECOND]
        finally:
            lease.execute("ROLLBACK")


class _Stopped(_Nth):
    """74u's `_Nth` for `revoke_members` (its transactions too), the admin's session first
    terminated by the server at the `nth` statement when `kill` (what it sees of a killed
    node)."""

    def __init__(self, conn: Any, nth: int, after: bool, kill: bool, su: Any) -> None:
        super().__init__(conn, nth, after)
        self.kill, self.su = kill, su

    def transaction(self) -> Any:
        return self.conn.transaction()

    def execute(self, statement: Any, params: Any = None) -> Any:
        try:
            return super().execute(statement, params)
        except KeyboardInterrupt:
            if self.kill:
                pid = self.conn.info.backend_pid
                self.su.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
            raise


# what `revoke_members` sends for one member, each ending one statement here: the read, the
# REVOKE, the note, the ending in the REVOKEs' transaction, the read and the ending after its
# commit (the read again: review 75q, pglast4 1)
_REVOKE_MEMBERS_SENT = 6


@pytest.mark.parametrize("kill", [False, True], ids=["interrupted", "killed"])
@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
@pytest.mark.parametrize("nth", range(_REVOKE_MEMBERS_SENT))
def test_a_stop_at_any_statement_leaves_the_member_to_the_retry(
    pg_server: PgServer, nth: int, after: bool, kill: bool
) -> None:
    """Refuted 6 (crash and interrupt at every statement `revoke_members` sends): `_REVOKED`
    granted to `_SECOND`; the revocation's admin session interrupted, or terminated by the
    server, before or after its `nth` statement: the retry ends `_SECOND`'s sessions (the
    membership kept, or stored in the note)."""
    with _roles(pg_server) as su, pg_server.connect() as admin:
        su.execute(f"GRANT {_REVOKED} TO {_SECOND}")
        wrapped = _Stopped(admin, nth, after, kill, su)
        with pytest.raises((KeyboardInterrupt, psycopg.OperationalError)):  # (the lost session)
            locks.revoke_members(wrapped, _REVOKED, lambda _member: wrapped.execute("SELECT 1"))
        assert wrapped.fired
        assert wrapped.sent == nth + 1
        again: list[str] = []
        locks.revoke_members(su, _REVOKED, again.append)
        assert again == [_SECOND, _SECOND]
