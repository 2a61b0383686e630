"""Review 72a, pgdrops: attacks on the revocation's bounded drops that did not work
(postgres_drops.py; PostgreSQL tests: TROTH_REQUIRE_PG=1; PostgreSQL 15 here).

- Names that break the generated statements: a double quote, `%s`, `%(role)s`, braces, a
  single quote, non-ASCII letters, a name of 63 bytes (and one cut to 63), on a table, a view,
  an enum, a function taking the odd table's row type, a trigger, a policy, a constraint, a
  column default, a statistics object: each is quoted by `sql.Identifier` and run with no
  parameters, the role left owning nothing but its schema.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.leases import LeaseWorld
from tests.test_review71r_pglease import owned_after_drops
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    OrdersDb,
    orders,
    world,
)

_ODD = '"q""t%s{}\'"'  # q"t%s{}'
_LONG = '"' + "é" * 40 + '"'  # 80 bytes: cut to 63 (31 letters and a half: PostgreSQL cuts whole)
_NAMES = (
    f"CREATE TABLE {_ODD} (a int DEFAULT 1, b int)",
    'CREATE TABLE "%(role)s" (a int)',
    f"CREATE TABLE {_LONG} (a int)",
    'CREATE VIEW "ünï名" AS SELECT 1 AS a',
    "CREATE TYPE \"e'%%\" AS ENUM ('a')",
    f'CREATE FUNCTION "f""(" (r {_ODD}) RETURNS int LANGUAGE sql AS \'SELECT 1\'',
    "CREATE FUNCTION \"tr%\" () RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'",
    f'CREATE TRIGGER "t""g" BEFORE INSERT ON {_ODD} FOR EACH ROW EXECUTE FUNCTION "tr%"()',
    'CREATE POLICY "p%s" ON "%(role)s" USING (true)',
    'ALTER TABLE "%(role)s" ADD CONSTRAINT "c""%" CHECK (a > 0)',
    f'CREATE STATISTICS "s{{}}" ON a, b FROM {_ODD}',
)


def test_odd_names_do_not_break_the_drops(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """72a refuted: objects with names made to break the generated statements (quotes, `%`,
    braces, non-ASCII, cut at 63 bytes): the drops leave the role owning nothing but its
    schema."""
    assert owned_after_drops(tmp_path, world, orders, _NAMES) == 1
