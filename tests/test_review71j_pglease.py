"""Review 71j, pglease: a lease's objects against its revocation (PostgreSQL tests:
TROTH_REQUIRE_PG=1), after 71b's batched unlink of its large objects.

pglease 2 (71b's, closed here; its enum types are tests/test_review71b_pglease.py): thousands
of objects in the lease's own schema failed `DROP OWNED` "out of shared memory" at every retry,
REVOKING for good; so did another lease's thousands of types in the schema the lease let it
create in (the lease's `DROP OWNED` dropped its schema with CASCADE, locking them all). The
revocation now drops its objects kind by kind in bounded transactions first (postgres_drops.py).

pglease 6: a SECURITY DEFINER function of the lease, which any role may call, makes large
objects owned by the lease's role: another live lease calling it while the revocation unlinked
the role's large objects (each call after the last batch: here, right after the unlink) made
20000 more, and `DROP OWNED` failed "out of shared memory" at every retry (or the unlink loop
ran for as long as the callers outran it). Its routines are now dropped before the unlink,
which counts its batches from the large objects there at its start.

pglease 7: a lease that holds its role's row in a session busy in code that takes no interrupt
(71b's pglease 4: NOLOGIN cannot be had) was stripped of its memberships and privileges at each
failed attempt, but kept its schema and all it made there: it logged in again (still LOGIN) and
read what it had copied into its own table, and made what it liked there, until the stuck
statement ended (as long as its holder likes). Its objects are now dropped at each attempt too.

pglease 8: a table with thousands of CHECK constraints costs PostgreSQL time quadratic in their
number to drop (4000: ~25 s here): past the statement timeout (some 5000 at its default, 35 s)
the revocation's `DROP OWNED` was cancelled at every retry, REVOKING for good. The constraints
now go first, a batch to a transaction, each statement under its own timeout (here: 1000
against a timeout of 0.5 s).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import drop_flooded, two_leases
from tests.test_review71b_pglease import revoked_past_stuck
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    login,
    now,
    orders,
    setup,
    world,
)
from troth import limits
from troth.secrets import LeaseState
from troth.secrets.engines import postgres_locks

_CONSTRAINTS = (  # one statement: a table with 1000 CHECK constraints in the lease's schema
    "DO $$BEGIN EXECUTE 'CREATE TABLE t (a int' || (SELECT string_agg("
    "', CONSTRAINT c' || i || ' CHECK (a > 0)', '') FROM generate_series(1, 1000) i) || ')'; END$$"
)
_TYPES_IN = (  # the other lease's 8000 enum types in the lease's schema, a transaction each
    "DO $$BEGIN FOR i IN 1..8000 LOOP "
    "EXECUTE format('CREATE TYPE %I.e%s AS ENUM ()', '{schema}', i); COMMIT; END LOOP; END$$"
)


def test_another_leases_flood_in_the_leases_schema_cannot_keep_it_revoking(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """71j pglease 2: 8000 enum types another lease made in the lease's schema (the lease let
    it create there): the lease's DROP OWNED dropped its schema with CASCADE and failed "out of
    shared memory" at every retry, REVOKING. It ends REVOKED, its role gone."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    first, second = two_leases(broker, agent, SECRET, now(), "orders:read")
    role, other = str(first.lease.engine_ref), str(second.lease.engine_ref)
    try:
        with login(orders, first.credential.reveal()) as session:
            session.execute(f'GRANT USAGE, CREATE ON SCHEMA "{role}" TO "{other}"')
        with login(orders, second.credential.reveal()) as another:
            another.execute(_TYPES_IN.replace("{schema}", role))
        assert broker.revoke(agent, first.lease_id, now=now()).state is LeaseState.REVOKED
        assert role not in orders.lease_roles()
    finally:
        broker.close()
        drop_flooded(orders, role, other)


_FLOOD_FUNCTION = (
    "CREATE FUNCTION flood() RETURNS bigint LANGUAGE sql SECURITY DEFINER "
    "AS 'SELECT count(lo_create(0)) FROM generate_series(1, 20000)'"
)


def test_a_definer_function_cannot_flood_large_objects_past_the_unlink(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """71j pglease 6: the lease's SECURITY DEFINER `flood()` (PUBLIC may execute it) makes
    20000 large objects as the lease's role; another live lease calls it each time the
    revocation has unlinked the role's large objects: DROP OWNED failed "out of shared memory"
    at every retry, REVOKING. It ends REVOKED, the call failing (the function dropped first)."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    first, second = two_leases(broker, agent, SECRET, now(), "orders:read")
    role = str(first.lease.engine_ref)
    caller = login(orders, second.credential.reveal())
    real: Callable[[Any, str], None] = postgres_locks.unlink_large_objects
    calls: list[str] = []

    def unlink_then_call(conn: Any, name: str) -> None:
        real(conn, name)
        try:
            caller.execute(f'SELECT "{role}".flood()')
            calls.append("made")
        except psycopg.Error:
            calls.append("failed")

    monkeypatch.setattr(postgres_locks, "unlink_large_objects", unlink_then_call)
    try:
        with login(orders, first.credential.reveal()) as session:
            session.execute(_FLOOD_FUNCTION)
            session.execute(f'GRANT USAGE ON SCHEMA "{role}" TO PUBLIC')
        assert broker.revoke(agent, first.lease_id, now=now()).state is LeaseState.REVOKED
        assert role not in orders.lease_roles()
        assert calls == ["failed"]
    finally:
        caller.close()
        broker.close()
        drop_flooded(orders, role)


def test_a_lease_holding_its_row_keeps_nothing_it_made(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """71j pglease 7: the lease copies `orders` into its own table, then holds its role's row
    in a session that takes no interrupt: the failed revocation left it the table, and it
    logged in again and read the copy. After the revocation its table is gone (or it logs in
    no more)."""
    made = "CREATE TABLE kept AS SELECT * FROM orders"
    with revoked_past_stuck(tmp_path, world, orders, row=True, made=made) as again:
        if again is not None:
            with pytest.raises(psycopg.errors.UndefinedTable):
                again.execute("SELECT id FROM kept")


_ZOO = (  # one object of each kind the drop step names, made by the lease in its own schema
    "CREATE TABLE t (a int CHECK (a > 0), b int DEFAULT 1)",
    "CREATE INDEX ti ON t (b)",
    "CREATE STATISTICS st ON a, b FROM t",
    "CREATE FUNCTION tf() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'",
    "CREATE TRIGGER tg BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION tf()",
    "CREATE POLICY p ON t USING (true)",
    "CREATE RULE r AS ON UPDATE TO t DO ALSO NOTIFY x",
    "CREATE VIEW v AS SELECT a FROM t",
    "CREATE MATERIALIZED VIEW mv AS SELECT a FROM t",
    "CREATE SEQUENCE s",
    "CREATE TYPE comp AS (x int)",
    "CREATE TYPE e AS ENUM ('a')",
    "CREATE DOMAIN d AS int CONSTRAINT dc CHECK (VALUE > 0)",
    "CREATE TYPE rg AS RANGE (subtype = int)",
    "CREATE FUNCTION f(e) RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE FUNCTION tocomp(e) RETURNS comp LANGUAGE sql AS 'SELECT ROW(1)::comp'",
    "CREATE CAST (e AS comp) WITH FUNCTION tocomp(e)",
    "CREATE FUNCTION eq(e, e) RETURNS bool LANGUAGE sql AS 'SELECT true'",
    "CREATE OPERATOR === (LEFTARG = e, RIGHTARG = e, FUNCTION = eq)",
    "CREATE OPERATOR !!! (RIGHTARG = e, FUNCTION = f)",
    "CREATE AGGREGATE agg(int) (SFUNC = int4pl, STYPE = int)",
    "CREATE PROCEDURE pr() LANGUAGE sql AS 'SELECT 1'",
    'CREATE COLLATION co FROM "C"',
    "CREATE TEXT SEARCH CONFIGURATION tsc (COPY = pg_catalog.simple)",
    "CREATE TEXT SEARCH DICTIONARY tsd (TEMPLATE = pg_catalog.simple)",
    'CREATE TYPE "e%s; DROP TABLE x" AS ENUM ()',  # a name is no statement nor placeholder
    "CREATE OPERATOR %% (LEFTARG = e, RIGHTARG = e, FUNCTION = eq)",
)


def test_each_kind_goes_in_its_own_step(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """71j pglease 2: the lease makes one object of each kind in its schema; each step of the
    drop leaves none of its kind (no statement of it failed, leaving its object to DROP
    OWNED), and the lease's role then owns nothing there but its schema."""
    from troth.secrets.engines import postgres_drops  # (review 71j: new)

    broker = setup(tmp_path, world, orders)
    try:
        issued = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
        role = str(issued.lease.engine_ref)
        with login(orders, issued.credential.reveal()) as session:
            for statement in _ZOO:
                session.execute(statement)
        params = {"role": role, "before": 1 << 62, "limit": 1000, "theirs": [], "others": True}
        left = []
        with orders.server.connect(dbname=orders.dbname) as admin:
            for kind in postgres_drops._KINDS:
                monkeypatch.setattr(postgres_drops, "_KINDS", (kind,))
                postgres_drops.drop_objects(admin, role)
                left += admin.execute(kind[1], params).fetchall()  # (catalog, query, statement)
            (owned,) = admin.execute(
                "SELECT count(*) FROM pg_shdepend WHERE refobjid = %s::regrole AND deptype = 'o'"
                " AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
                (role,),
            ).fetchone()
        assert left == []
        assert owned == 1  # its schema
    finally:
        broker.close()


def test_a_table_of_many_constraints_cannot_keep_a_lease_revoking(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """71j pglease 8: the lease's table has 1000 CHECK constraints and statements time out
    after 0.5 s: its DROP OWNED (seconds) was cancelled at every retry, REVOKING. It ends
    REVOKED, its role gone."""
    monkeypatch.setattr(limits, "POSTGRES_STATEMENT_TIMEOUT_MS", 400)  # + terminate_wait_ms
    broker = setup(tmp_path, world, orders, terminate_wait_ms=100)
    role = ""
    try:
        issued = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
        role = str(issued.lease.engine_ref)
        with login(orders, issued.credential.reveal()) as session:
            session.execute(_CONSTRAINTS)
        revoked = broker.revoke(world.credential_a(), issued.lease_id, now=now())
        assert revoked.state is LeaseState.REVOKED
        assert role not in orders.lease_roles()
    finally:
        broker.close()
        drop_flooded(orders, role)
