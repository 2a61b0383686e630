"""Review 70w, postgres schemas (70n's per-lease schemas): attacks that did not work, kept as
guards (PostgreSQL tests: TROTH_REQUIRE_PG=1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.leases import LeaseWorld
from tests.test_review56b_postgres import drop_leases, plain_admin
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    _admin_sql,
    login,
    now,
    orders,
    setup,
    world,
)
from troth.errors import SecretError, SecretFailure
from troth.secrets import LeaseState
from troth.secrets.engines import postgres


class _FailingSchema:
    """The admin's connection, but `CREATE SCHEMA` fails (after `GRANT <role> TO
    CURRENT_USER` ran, before the `REVOKE`)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, statement: Any, *args: Any) -> Any:
        text = statement if isinstance(statement, str) else statement.as_string(self._conn)
        if text.startswith("CREATE SCHEMA"):
            return self._conn.execute("SELECT 1 / 0")
        return self._conn.execute(statement, *args)


def test_a_failure_between_the_admins_grant_and_revoke_leaves_it_no_membership(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tried: a CREATEROLE admin (no superuser) made a member of the new lease role for
    `CREATE SCHEMA ... AUTHORIZATION`, the statement failing before the `REVOKE`, hoping the
    admin keeps the membership (a crash there is the same: the transaction is never
    committed). The GRANT is in the role's own transaction: rolled back with the role, the
    issue fails ENGINE_FAILED, the admin a member of nothing but pg_signal_backend, and the
    next issue works. The direction holds too: the admin is the member, never the lease."""
    made = postgres._own_schema

    def failing(conn: Any, role: str) -> None:
        made(_FailingSchema(conn), role)

    monkeypatch.setattr(postgres, "_own_schema", failing)
    admin = plain_admin(orders)
    _admin_sql(orders, f"GRANT CREATE ON DATABASE {orders.dbname} TO {admin}")
    broker = setup(tmp_path, world, orders, user=admin)
    try:
        with pytest.raises(SecretError) as caught:
            broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
        assert caught.value.reason is SecretFailure.ENGINE_FAILED
        assert orders.lease_roles() == set()
        monkeypatch.setattr(postgres, "_own_schema", made)
        issued = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
        role = str(issued.lease.engine_ref)
        with orders.server.connect(dbname=orders.dbname) as conn:
            members = conn.execute(
                "SELECT roleid::regrole::text, member::regrole::text FROM pg_auth_members "
                "WHERE member IN (%s::regrole, %s::regrole) OR roleid = %s::regrole",
                (admin, role, role),
            ).fetchall()
        assert members == [("pg_signal_backend", admin)]
    finally:
        broker.close()
        drop_leases(orders, admin, broker)


_TRAPS = (  # what the admin's revocation calls unqualified, each a closer match, each failing
    "CREATE FUNCTION {s}.pg_terminate_backend(integer, integer) RETURNS boolean "
    "LANGUAGE sql AS $$SELECT 1 / 0 = 1$$",
    "CREATE FUNCTION {s}.pg_terminate_backend(smallint, smallint) RETURNS boolean "
    "LANGUAGE sql AS $$SELECT 1 / 0 = 1$$",
    "CREATE FUNCTION {s}.has_database_privilege(varchar, varchar) RETURNS boolean "
    "LANGUAGE sql AS $$SELECT 1 / 0 = 1$$",
    "CREATE FUNCTION {s}.current_database() RETURNS name LANGUAGE sql AS $$SELECT 'x'::name$$",
    "CREATE FUNCTION {s}.aclexplode(aclitem[], integer) RETURNS SETOF record "
    "LANGUAGE sql AS $$SELECT 1 / 0$$",
)


def test_a_leases_functions_in_its_schema_are_never_the_admins(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """Tried: a lease defines, in its own schema, closer matches (or new overloads) for what
    the admin calls unqualified at renewal and revocation (`pg_terminate_backend`,
    `has_database_privilege`, `current_database`, `aclexplode`), each failing, and keeps a
    session open so the revocation must end it. The admin's session searches
    `pg_catalog, pg_temp` only (start-up options): renewal and revocation succeed, the lease
    REVOKED, its session ended."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    try:
        issued = broker.issue(agent, SECRET, scope=["orders:write"], now=now())
        role = str(issued.lease.engine_ref)
        held = login(orders, issued.credential.reveal())
        for trap in _TRAPS:
            held.execute(trap.format(s=f'"{role}"'))
        held.execute(f'GRANT USAGE ON SCHEMA "{role}" TO PUBLIC')
        broker.renew(agent, issued.lease_id, ttl=300, now=now())
        assert broker.revoke(agent, issued.lease_id, now=now()).state is LeaseState.REVOKED
        assert role not in orders.lease_roles()
        with pytest.raises(psycopg.OperationalError):
            held.execute("SELECT 1")
        held.close()
    finally:
        broker.close()


def test_a_lease_cannot_make_an_event_trigger_in_its_schema(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """Tried: the lease, owning a schema now, writes a function there and an event trigger
    calling it on `ddl_command_start` (it would run in every role's DDL, the admin's
    `DROP OWNED` too). Event triggers are a superuser's: refused."""
    broker = setup(tmp_path, world, orders)
    try:
        issued = broker.issue(world.credential_a(), SECRET, scope=["orders:write"], now=now())
        role = str(issued.lease.engine_ref)
        with login(orders, issued.credential.reveal()) as session:
            session.execute(
                f'CREATE FUNCTION "{role}".spy() RETURNS event_trigger LANGUAGE plpgsql '
                "AS $$BEGIN NULL; END$$"
            )
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                session.execute(
                    f'CREATE EVENT TRIGGER spy ON ddl_command_start EXECUTE FUNCTION "{role}".spy()'
                )
    finally:
        broker.close()


def test_a_lease_that_drops_its_schema_cannot_make_another(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """Tried: the lease drops its own schema (it owns it) and makes one named after a role
    whose sessions would search it (the writer template's, as a later lease's or an
    application's role): `CREATE SCHEMA` takes CREATE on the database, never copied; the
    lease's revocation ends REVOKED with no schema to drop."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    try:
        issued = broker.issue(agent, SECRET, scope=["orders:write"], now=now())
        role = str(issued.lease.engine_ref)
        with login(orders, issued.credential.reveal()) as session:
            session.execute(f'DROP SCHEMA "{role}"')
            for name in (orders.writer, role):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    session.execute(f'CREATE SCHEMA "{name}"')
        assert broker.revoke(agent, issued.lease_id, now=now()).state is LeaseState.REVOKED
        assert role not in orders.lease_roles()
    finally:
        broker.close()
