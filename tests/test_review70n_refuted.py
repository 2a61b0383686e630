"""Review 70n, postgres schemas: attacks on the lease's own schema that did not work (kept as
guards; PostgreSQL tests: TROTH_REQUIRE_PG=1)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import PgServer
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    login,
    now,
    orders,
    setup,
    world,
)
from troth.errors import SecretError, SecretFailure
from troth.secrets.engines import postgres


@pytest.mark.parametrize(
    "statement",
    ['ALTER SCHEMA "{role}" RENAME TO {writer}', 'ALTER SCHEMA "{role}" OWNER TO {writer}'],
)
def test_a_lease_cannot_give_its_schema_another_roles_name_or_owner(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    statement: str,
) -> None:
    """Tried: the lease renames its own schema after another role (the writer template, as it
    would an application's role), whose sessions search `"$user"` first, or hands it to that
    role. Renaming a schema takes CREATE on the database, which no lease holds (refused in a
    template since review 70c, leases 3); a new owner takes membership in it: both refused."""
    broker = setup(tmp_path, world, orders)
    try:
        issued = broker.issue(world.credential_a(), SECRET, scope=["orders:write"], now=now())
        role = str(issued.lease.engine_ref)
        denied = pytest.raises(psycopg.errors.InsufficientPrivilege)
        with login(orders, issued.credential.reveal()) as session, denied:
            session.execute(statement.format(role=role, writer=orders.writer))
    finally:
        broker.close()


def test_a_leases_table_in_its_own_schema_shadows_nothing_for_another_lease(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """Tried: agent a's lease makes its own `orders` (unqualified: in its schema, which PUBLIC
    may use and read) hoping agent b's lease, or the application, reads it for `orders`:
    they read `public.orders`; only a's own sessions see its table first."""
    broker = setup(tmp_path, world, orders)
    try:
        a = broker.issue(world.credential_a(), SECRET, scope=["orders:write"], now=now())
        b = broker.issue(world.credential_b(), SECRET, scope=["orders:read"], now=now())
        role = str(a.lease.engine_ref)
        with login(orders, a.credential.reveal()) as session:
            session.execute(
                "CREATE TABLE orders (id int, total int); INSERT INTO orders VALUES (666, 0); "
                "GRANT SELECT ON orders TO PUBLIC"
            )
            session.execute(f'GRANT USAGE ON SCHEMA "{role}" TO PUBLIC')
            assert session.execute("SELECT id FROM orders").fetchall() == [(666,)]
        with login(orders, b.credential.reveal()) as session:
            assert session.execute("SELECT id FROM orders").fetchall() == [(4471,)]
        with orders.server.connect(dbname=orders.dbname) as app:
            assert app.execute("SELECT id FROM orders").fetchall() == [(4471,)]
    finally:
        broker.close()


def test_an_issue_failing_at_the_schema_leaves_no_role(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tried: an issue failing between `CREATE ROLE` and `CREATE SCHEMA` (here the schema made,
    then a statement failing) leaving a role with no schema, or a schema with no role: both
    are in one transaction, rolled back together; the issue fails ENGINE_FAILED."""
    made = postgres._own_schema

    def failing(conn: Any, role: str) -> None:
        made(conn, role)
        conn.execute("SELECT 1 / 0")

    monkeypatch.setattr(postgres, "_own_schema", failing)
    broker = setup(tmp_path, world, orders)
    try:
        with pytest.raises(SecretError) as caught:
            broker.issue(world.credential_a(), SECRET, scope=["orders:write"], now=now())
        assert caught.value.reason is SecretFailure.ENGINE_FAILED
        assert orders.lease_roles() == set()
        with orders.server.connect(dbname=orders.dbname) as admin:
            schemas = admin.execute(
                "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tl\\_%'"
            ).fetchone()
        assert schemas == (0,)
    finally:
        broker.close()


def test_the_sweep_drops_an_orphan_roles_schema(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    pg_server: PgServer,
) -> None:
    """Tried: a role of this broker with no lease (the node's database lost its record) left
    with its schema and a table in it: the sweep's orphan revocation (`DROP OWNED` in dbname)
    drops the schema with the role."""
    broker = setup(tmp_path, world, orders)
    orphan = f"tl_{broker.keys.broker_id}_" + uuid.uuid4().hex
    with pg_server.connect(dbname=orders.dbname) as admin:
        admin.execute(
            f"CREATE ROLE {orphan} LOGIN; CREATE SCHEMA {orphan} AUTHORIZATION {orphan}; "
            f"CREATE TABLE {orphan}.kept (x int); ALTER TABLE {orphan}.kept OWNER TO {orphan}"
        )
    try:
        assert broker.sweep(now()).orphans == 1
        assert orphan not in orders.lease_roles()
        with pg_server.connect(dbname=orders.dbname) as admin:
            left = admin.execute(
                "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (orphan,)
            ).fetchone()
        assert left == (0,)
    finally:
        broker.close()


def test_another_leases_table_in_a_leases_schema_cannot_keep_it_alive(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """Tried: agent a's lease lets PUBLIC create in its own schema; agent b's lease makes a
    table there, hoping `DROP OWNED` of a's role (its schema) fails for good on an object of
    a live role. It runs with CASCADE (what depends on a lease's objects goes with them): a's
    lease ends REVOKED, its schema gone with b's table; b's lease lives."""
    from troth.secrets import LeaseState

    broker = setup(tmp_path, world, orders)
    try:
        a = broker.issue(world.credential_a(), SECRET, scope=["orders:write"], now=now())
        b = broker.issue(world.credential_b(), SECRET, scope=["orders:write"], now=now())
        role = str(a.lease.engine_ref)
        with login(orders, a.credential.reveal()) as session:
            session.execute(f'GRANT USAGE, CREATE ON SCHEMA "{role}" TO PUBLIC')
        with login(orders, b.credential.reveal()) as session:
            session.execute(f'CREATE TABLE "{role}".squatter (x int)')
        assert broker.revoke(world.credential_a(), a.lease_id, now=now()).state is (
            LeaseState.REVOKED
        )
        assert role not in orders.lease_roles()
        with login(orders, b.credential.reveal()) as session:  # b's lease lives
            session.execute("INSERT INTO orders VALUES (5, 1)")
    finally:
        broker.close()
