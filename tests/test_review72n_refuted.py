"""Review 72n, pgorder: attacks on the drops of another role's objects depending on a lease's
(postgres_drops.py, review 72a) that did not work (PostgreSQL tests: TROTH_REQUIRE_PG=1;
PostgreSQL 15 here). Each compares what the drops leave of the other roles' objects with what
plain `DROP OWNED BY role CASCADE` leaves (`cascade_and_drops`): never less.

- Another lease's objects on the lease's function, types and table, in its own schema: an
  expression index, a check constraint, a policy, a rule on its table, a domain over the
  lease's domain and one with a check calling its function, a range of its type, a typed
  table of its composite type, a composite type with an attribute of its enum, a partitioned
  table with an expression index (its partitions'), a statistics object on an expression, a
  column default and a foreign key in one table with columns that do not depend on the lease.
- A cycle (the lease's view reading its function returning the view's rows) that the
  admin's (a superuser's) view and another lease's view read: each member dropped with
  CASCADE takes those views (as CASCADE does), nothing more of the admin's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.leases import LeaseWorld
from tests.test_review72n_pgorder import cascade_and_drops
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    OrdersDb,
    orders,
    world,
)

_LEASES = (  # the lease's function, types and table, usable and referable by all
    "CREATE FUNCTION f(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1'",
    "CREATE DOMAIN pos AS int CHECK (VALUE > 0)",
    "CREATE TYPE mood AS ENUM ('a')",
    "CREATE TYPE pair AS (a int, b int)",
    "CREATE TABLE t (a int PRIMARY KEY)",
    'GRANT USAGE ON SCHEMA "{role}" TO PUBLIC',
    "GRANT SELECT, REFERENCES ON t TO PUBLIC",
)
_THEIRS = (  # another lease's, in its own schema
    'CREATE TABLE o (a int, b int, c int DEFAULT "{role}".f(1) REFERENCES "{role}".t,'
    ' CONSTRAINT chk CHECK ("{role}".f(a) > 0))',
    'CREATE INDEX oi ON o ("{role}".f(b))',
    'CREATE POLICY op ON o USING ("{role}".f(a) > 0)',
    'CREATE RULE orl AS ON INSERT TO o DO ALSO SELECT * FROM "{role}".t',
    'CREATE STATISTICS ost ON ("{role}".f(a)), b FROM o',
    'CREATE DOMAIN d1 AS "{role}".pos',
    'CREATE DOMAIN d2 AS int CHECK ("{role}".f(VALUE) > 0)',
    'CREATE TYPE rg AS RANGE (subtype = "{role}".pos)',
    'CREATE TABLE typed OF "{role}".pair',
    'CREATE TYPE comp AS (a int, m "{role}".mood)',
    "CREATE TABLE pt (a int, b int) PARTITION BY RANGE (a)",
    "CREATE TABLE pt1 PARTITION OF pt FOR VALUES FROM (0) TO (10)",
    'CREATE INDEX pti ON pt ("{role}".f(b))',
    "CREATE TABLE solo (a int)",
)


def test_another_leases_dependents_go_as_with_cascade(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """72n refuted: another lease's objects of each kind on the lease's: the drops leave all
    that CASCADE leaves of them (and the tables o, pt, pt1, solo)."""
    cascade, dropped = cascade_and_drops(tmp_path, world, orders, monkeypatch, _LEASES, _THEIRS)
    assert {"o.a", "o.b", "pt.a", "pt1.b", "solo.a"} <= cascade
    assert cascade - dropped == set()


_CYCLE = (  # the lease's view reading its function returning the view's rows
    "CREATE VIEW v1 AS SELECT 1 AS a",
    "CREATE FUNCTION h1() RETURNS SETOF v1 LANGUAGE sql AS 'SELECT 1'",
    "CREATE OR REPLACE VIEW v1 AS SELECT a FROM h1()",
    'GRANT USAGE ON SCHEMA "{role}" TO PUBLIC',
    "GRANT SELECT ON v1 TO PUBLIC",
    "GRANT EXECUTE ON FUNCTION h1() TO PUBLIC",
)
_ON_CYCLE = (
    'CREATE VIEW w1 AS SELECT a FROM "{role}".v1',
    'CREATE VIEW w2 AS SELECT a FROM "{role}".h1()',
    "CREATE TABLE keep (a int)",
)


def test_a_cycle_cascades_no_further_than_cascade(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """72n refuted: a cycle of the lease's that another lease's views and the admin's view
    read: the drops' CASCADE on the cycle's members takes what CASCADE takes (the views), the
    admin's table and the other lease's stay."""
    admin = (
        "CREATE TABLE public.admins (a int)",
        'CREATE VIEW public.adminv AS SELECT a FROM "{role}".v1',
    )
    cascade, dropped = cascade_and_drops(
        tmp_path, world, orders, monkeypatch, _CYCLE, _ON_CYCLE, admin
    )
    assert {"admins.a", "keep.a"} <= cascade
    assert "adminv.a" not in cascade
    assert cascade - dropped == set()


_ODD = '"k""%s{}\'"'  # k"%s{}'
_TYPED_CHILDREN = (  # another lease's tables with columns of the lease's types, odd names
    f'CREATE TABLE {_ODD} ({_ODD} "{{role}}".mood, a int DEFAULT "{{role}}".f(1)'
    f' CONSTRAINT {_ODD} CHECK ("{{role}}".f(a) > 0))',
    f"CREATE TABLE kid (b int) INHERITS ({_ODD})",
    'CREATE TABLE loc (m "{role}".mood, b int)',
    'CREATE TABLE loc2 (m "{role}".mood, c int) INHERITS (loc)',  # merged, local
)


def test_columns_and_defaults_of_odd_names_and_children_go_as_with_cascade(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """72n refuted: another lease's tables with a column of the lease's enum, a default and a
    check calling its function, named with a double quote, `%s`, braces and a quote, an
    inheriting child, and a child whose column of the enum is its own too (merged): `DROP
    COLUMN`, `DROP DEFAULT` and `DROP CONSTRAINT` (recursing into children) leave what CASCADE
    leaves, the tables' other columns."""
    cascade, dropped = cascade_and_drops(
        tmp_path, world, orders, monkeypatch, _LEASES, _TYPED_CHILDREN
    )
    assert {"kid.b", "loc.b", "loc2.c"} <= cascade
    assert cascade - dropped == set()
