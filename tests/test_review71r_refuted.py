"""Review 71r, refuted (wave3b, PostgreSQL tests: TROTH_REQUIRE_PG=1): attacks on the
revocation's bounded drops (postgres_drops.py) that did not work, kept as passing tests."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import two_leases
from tests.test_review71r_pglease import owned_after_drops
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    login,
    now,
    orders,
    setup,
    world,
)
from troth.secrets import LeaseState

_TRAP = "LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'the admin ran the lease''s code'; END$$"
_NAMES = (  # names against the drop statements, and builtins' look-alikes in the lease's schema
    "CREATE TABLE orders (id int)",  # the application's table's name, in the lease's schema
    'CREATE TABLE "public.orders" (id int)',
    'CREATE TABLE "public"".""orders" (id int)',
    'CREATE TABLE "x""; DROP TABLE public.orders; --" (id int)',
    'CREATE TABLE "ordérs ☃ %s {}" (id int)',
    f"CREATE TABLE {'o' * 70} (id int)",  # truncated to 63 bytes
    'CREATE FUNCTION "f(); DROP TABLE public.orders; --"(int) RETURNS int LANGUAGE sql'
    " AS 'SELECT 1'",
    f"CREATE FUNCTION starts_with(name, text) RETURNS bool {_TRAP}",
    f"CREATE FUNCTION count(oid) RETURNS bigint {_TRAP}",
    f"CREATE FUNCTION unnest(oid[]) RETURNS SETOF oid {_TRAP}",
    f"CREATE FUNCTION eq(name, text) RETURNS bool {_TRAP}",
    "CREATE OPERATOR = (LEFTARG = name, RIGHTARG = text, FUNCTION = eq)",
    "CREATE OPERATOR <<=>>! (LEFTARG = int, RIGHTARG = int, FUNCTION = int4pl)",
)


def test_names_and_builtin_look_alikes_reach_no_other_object_nor_the_admin(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """71r refuted: the lease names its objects like the application's table (unqualified,
    with a dot, quotes, a statement, unicode and placeholders, 70 bytes) and defines
    `starts_with`, `count`, `unnest` and `=` for the argument types the drops' catalog reads
    use, each raising: the revocation ends REVOKED (the admin's search path is pg_catalog,
    pg_temp) and the application's table keeps its row."""
    broker = setup(tmp_path, world, orders)
    try:
        issued = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
        role = str(issued.lease.engine_ref)
        with login(orders, issued.credential.reveal()) as session:
            for statement in _NAMES:
                session.execute(statement)
        revoked = broker.revoke(world.credential_a(), issued.lease_id, now=now())
        assert revoked.state is LeaseState.REVOKED
        assert role not in orders.lease_roles()
        with orders.server.connect(dbname=orders.dbname) as admin:
            assert admin.execute("SELECT id FROM public.orders").fetchall() == [(4471,)]
    finally:
        broker.close()


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE t OWNER TO {other}",  # TOCTOU: give its table away mid-revocation
        "ALTER SCHEMA {mine} OWNER TO {other}",
        "CREATE EVENT TRIGGER again ON sql_drop EXECUTE FUNCTION tf()",  # re-create on drop
    ],
)
def test_a_lease_cannot_give_its_objects_away_nor_act_on_a_drop(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    statement: str,
) -> None:
    """71r refuted: a lease gives its table or schema to another lease between the drops'
    catalog read and their DROP (each would then go as the other's), or makes an event
    trigger that re-creates what a DROP drops: refused (no membership in the other role; event
    triggers are a superuser's); DML rules and triggers do not fire on DROP."""
    from psycopg import sql

    broker = setup(tmp_path, world, orders)
    try:
        mine, other = two_leases(broker, world.credential_a(), SECRET, now(), "orders:read")
        role, other_role = str(mine.lease.engine_ref), str(other.lease.engine_ref)
        with login(orders, mine.credential.reveal()) as session:
            session.execute("CREATE TABLE t (a int)")
            session.execute(
                "CREATE FUNCTION tf() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN END'"
            )
            text = sql.SQL(statement).format(
                mine=sql.Identifier(role), other=sql.Identifier(other_role)
            )
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                session.execute(text)
    finally:
        broker.close()


_MORE_KINDS = (  # shapes the drops' statements might not name right, or that depend in a cycle
    "CREATE FUNCTION vf(VARIADIC int[]) RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE FUNCTION outs(a int, OUT b int, OUT c int) LANGUAGE sql AS 'SELECT 1, 2'",
    "CREATE TABLE ih (a int CHECK (a > 0))",
    "CREATE TABLE ic () INHERITS (ih)",
    "CREATE TABLE idt (a int GENERATED ALWAYS AS IDENTITY, b serial)",
    "CREATE TABLE fk1 (a int PRIMARY KEY, b int)",
    "CREATE TABLE fk2 (a int PRIMARY KEY REFERENCES fk1)",
    "ALTER TABLE fk1 ADD FOREIGN KEY (b) REFERENCES fk2",  # a cycle of foreign keys
)


def test_variadic_out_inherited_identity_and_cyclic_objects_leave_nothing(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """71r refuted: a variadic function, one with OUT parameters, an inherited table and
    constraint, identity and serial columns, two tables whose foreign keys reference each
    other: the drops leave the role owning nothing but its schema (nothing left to DROP
    OWNED)."""
    assert owned_after_drops(tmp_path, world, orders, _MORE_KINDS) == 1
