"""Review 72a, pgdrops: a lease holder's objects against the revocation's bounded drops
(postgres_drops.py; PostgreSQL tests: TROTH_REQUIRE_PG=1). Each left objects of the lease's
role to `DROP OWNED`, which drops all that is left in one transaction: thousands of them fill
the server's lock table at each retry (71b pglease 2's failure, by other roads).

pgdrops 1: two tables, each column's default taking the next value of a sequence the other
owns: neither could be dropped alone (each drops the sequence the other's default needs), a
ring left to DROP OWNED. A column's default is now dropped first, on its own.

pgdrops 2: another role's objects that depend on the lease's through another (a view over its
view on the lease's table) or as a part of its own table (a column default calling the lease's
function, a foreign key to the lease's table) left the lease's objects to DROP OWNED's CASCADE.
They are now dropped with the lease's, before them, a batch at a time (what CASCADE dropped:
the default and the foreign key, not their tables), and nothing of the other role's that does
not depend on the lease's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.leases import LeaseWorld
from tests.test_review71r_pglease import after_drops, owned_after_drops
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    OrdersDb,
    orders,
    world,
)
from troth.secrets.engines import postgres_drops

_RING = (
    "CREATE TABLE r1 (a int)",
    "CREATE TABLE r2 (a int)",
    "CREATE SEQUENCE s1 OWNED BY r1.a",
    "CREATE SEQUENCE s2 OWNED BY r2.a",
    "ALTER TABLE r1 ALTER a SET DEFAULT nextval('s2')",
    "ALTER TABLE r2 ALTER a SET DEFAULT nextval('s1')",
)


def test_a_ring_of_tables_through_each_others_sequences_is_not_left_to_drop_owned(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """72a pgdrops 1: two tables each taking the next value of the other's sequence: the drops
    leave the role owning nothing but its schema (they left both tables, and thousands of such
    rings, to DROP OWNED)."""
    assert owned_after_drops(tmp_path, world, orders, _RING) == 1


_LENT = (  # the lease's table and function, its schema usable and its table referable by all
    "CREATE TABLE t (a int PRIMARY KEY)",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    'GRANT USAGE ON SCHEMA "{role}" TO PUBLIC',
    "GRANT SELECT, REFERENCES ON t TO PUBLIC",
)
_ON_LENT = (  # another lease's objects: some depend on the lease's, some do not
    'CREATE VIEW w1 AS SELECT a FROM "{role}".t',
    "CREATE VIEW w2 AS SELECT a FROM w1",
    'CREATE TABLE keep (a int DEFAULT "{role}".f(), b int REFERENCES "{role}".t)',
    "CREATE TABLE own (a int)",
    "CREATE VIEW solo AS SELECT a FROM own",
)
_LEFT = (  # the other lease's relations, defaults and constraints left, and what the lease owns
    "SELECT (SELECT array_agg(relname::text ORDER BY relname) FROM pg_class"
    " WHERE relowner = %(other)s::regrole AND relkind IN ('r', 'v')),"
    " (SELECT count(*) FROM pg_attrdef"
    " WHERE adrelid = (SELECT oid FROM pg_class WHERE relname = 'keep')),"
    " (SELECT count(*) FROM pg_constraint"
    " WHERE conrelid = (SELECT oid FROM pg_class WHERE relname = 'keep')),"
    " (SELECT count(*) FROM pg_shdepend WHERE refobjid = %(role)s::regrole AND deptype = 'o'"
    " AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database()))"
)


def test_another_leases_objects_on_the_leases_go_first_and_no_others(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """72a pgdrops 2: another lease's view over its view on the lease's table, and its table's
    default calling the lease's function and foreign key to the lease's table: the drops leave
    the lease's role owning nothing but its schema (they left its table and function to DROP
    OWNED's CASCADE), the other lease its tables and its view on its own table, without the
    default and foreign key (what CASCADE dropped)."""
    left = after_drops(tmp_path, world, orders, _LENT, _ON_LENT, _LEFT)
    assert left == [(["keep", "own", "solo"], 0, 0, 1)]


_TRIGGER_FN = (
    "CREATE FUNCTION trf() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'",
    'GRANT USAGE ON SCHEMA "{role}" TO PUBLIC',
)
_LET = (  # another lease lets all make triggers on its table and reference it
    "CREATE TABLE own (a int PRIMARY KEY)",
    "GRANT TRIGGER, REFERENCES ON own TO PUBLIC",
    'GRANT USAGE ON SCHEMA "{other}" TO PUBLIC',
)
_ON_THEIRS = (  # the lease's trigger on the other's table, its foreign key to it
    'CREATE TRIGGER tg BEFORE INSERT ON "{other}".own FOR EACH ROW EXECUTE FUNCTION trf()',
    'CREATE TABLE fk (a int REFERENCES "{other}".own)',
)
_OWN_LEFT = (  # the other lease's tables, their triggers of its own, and what the lease owns
    "SELECT (SELECT array_agg(relname::text) FROM pg_class"
    " WHERE relowner = %(other)s::regrole AND relkind = 'r'),"
    " (SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal),"
    " (SELECT count(*) FROM pg_shdepend WHERE refobjid = %(role)s::regrole AND deptype = 'o'"
    " AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database()))"
)


def test_the_leases_trigger_on_another_leases_table_goes_and_the_table_stays(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """72a pgdrops 2: the lease's trigger on another lease's table (which let all make them),
    calling the lease's function: the drops leave the lease's role owning nothing but its
    schema (they left the function to DROP OWNED's CASCADE), the other lease its table (which
    the lease's foreign key references: the reach never goes from the lease's objects to what
    they depend on), without the trigger."""
    left = after_drops(tmp_path, world, orders, _TRIGGER_FN, _LET, _OWN_LEFT, _ON_THEIRS)
    assert left == [(["own"], 0, 1)]


_CYCLE = (  # a view reading a function that returns the view's rows, and one more such pair
    "CREATE VIEW v1 AS SELECT 1 AS a",
    "CREATE FUNCTION h1() RETURNS SETOF v1 LANGUAGE sql AS 'SELECT 1'",
    "CREATE OR REPLACE VIEW v1 AS SELECT a FROM h1()",
    "CREATE VIEW v2 AS SELECT 1 AS a",
    "CREATE FUNCTION h2() RETURNS SETOF v2 LANGUAGE sql AS 'SELECT 1'",
    "CREATE OR REPLACE VIEW v2 AS SELECT a FROM h2()",
)


def test_objects_depending_on_each_other_are_not_left_to_drop_owned(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """72a pgdrops 4: two views, each reading a function that returns its rows (a cycle of
    dependencies: neither can be dropped alone): the drops leave the role owning nothing but
    its schema (they left both pairs, and thousands of such pairs, to DROP OWNED)."""
    assert owned_after_drops(tmp_path, world, orders, _CYCLE) == 1


_TYPED = ("CREATE TYPE mood AS ENUM ('a')", 'GRANT USAGE ON SCHEMA "{role}" TO PUBLIC')
_COLUMNS = (  # another lease's tables, a column each of the lease's type (or its array)
    'CREATE TABLE k1 (a int, m "{role}".mood)',
    'CREATE TABLE k2 (a int, m "{role}".mood[])',
)
_COLUMNS_LEFT = (  # the other lease's columns left, and what the lease owns
    "SELECT (SELECT array_agg(c.relname || '.' || a.attname ORDER BY c.relname, a.attname)"
    " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
    " WHERE c.relowner = %(other)s::regrole AND c.relkind = 'r' AND a.attnum > 0"
    " AND NOT a.attisdropped),"
    " (SELECT count(*) FROM pg_shdepend WHERE refobjid = %(role)s::regrole AND deptype = 'o'"
    " AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database()))"
)


def test_another_leases_columns_of_the_leases_type_go_first(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """72a pgdrops 3: another lease's tables with a column of the lease's enum type (or an
    array of it): the drops leave the lease's role owning nothing but its schema (they left
    the type to DROP OWNED's CASCADE, which drops the columns, one lock per table all in one
    transaction), the other lease its tables without those columns (what CASCADE dropped)."""
    left = after_drops(tmp_path, world, orders, _TYPED, _COLUMNS, _COLUMNS_LEFT)
    assert left == [(["k1.a", "k2.a"], 1)]


_CANCELLED = (  # a statement cancelled past its timeout (SQLSTATE 57014), deterministically
    "CREATE FUNCTION pg_temp.cancelled() RETURNS TABLE (c oid, o oid) LANGUAGE plpgsql"
    " AS $$BEGIN RAISE EXCEPTION 'timeout' USING ERRCODE = '57014'; END$$"
)


def test_a_reach_past_the_statement_timeout_leaves_the_drops_as_they_were(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """72a pgdrops 2 (the reach's bound): the query reading another role's objects that
    depend on the lease's, cancelled (past the statement timeout, a lease of a million
    objects): the drops go on without them, as before 72a (the lease's objects but the table
    the other's views read; they raised, failing the revocation at each retry)."""

    def cancelling(conn: Any, role: str) -> None:
        conn.execute(_CANCELLED)
        real(conn, role)

    real = postgres_drops.drop_objects
    monkeypatch.setattr(postgres_drops, "_REACH", "SELECT * FROM pg_temp.cancelled()")
    monkeypatch.setattr(postgres_drops, "drop_objects", cancelling)
    views = [_ON_LENT[0]]
    left = after_drops(tmp_path, world, orders, _LENT, views, _LEFT.replace("keep", "t"))
    assert left == [(["w1"], 0, 0, 2)]  # its table (its key dropped) and schema left


def test_a_lease_of_more_objects_than_a_round_takes_more_rounds(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """72a pgdrops (the rounds' bound): a round reads, orders and drops `DROP_ROUND_OBJECTS`
    at most (4 here); 13 enum types take 4 rounds, past `DROP_SWEEPS` (3), within
    `DROP_ROUNDS` (5 here): the role owns nothing but its schema."""
    monkeypatch.setattr(postgres_drops, "DROP_ROUND_OBJECTS", 4)
    monkeypatch.setattr(postgres_drops, "DROP_ROUNDS", 5)
    types = [
        "DO $$BEGIN FOR i IN 1..13 LOOP EXECUTE format('CREATE TYPE e%s AS ENUM ()', i);"
        " END LOOP; END$$"
    ]
    assert owned_after_drops(tmp_path, world, orders, types) == 1
