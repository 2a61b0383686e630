"""Review 72a, pgdrops: attacks on the revocation's bounded drops that did not work
(postgres_drops.py; PostgreSQL tests: TROTH_REQUIRE_PG=1; PostgreSQL 15 here).

- Names that break the generated statements: a double quote, `%s`, `%(role)s`, braces, a
  single quote, non-ASCII letters, a name of 63 bytes (and one cut to 63), on a table, a view,
  an enum, a function taking the odd table's row type, a trigger, a policy, a constraint, a
  column default, a statistics object: each is quoted by `sql.Identifier` and run with no
  parameters, the role left owning nothing but its schema.
- An admin that is no superuser (a member of the lease's role, not of the other lease's)
  meeting another lease's views on the lease's table: the drops would stop at the first view
  it may not drop, leaving everything to `DROP OWNED`; they read another role's objects only
  under a superuser, and drop all the lease's but the table (left to `DROP OWNED`'s CASCADE,
  as before), the views untouched.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.leases import LeaseWorld
from tests.test_review71r_pglease import after_drops, owned_after_drops
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


_LENT = (  # the lease's table, some types, its schema usable by all
    "CREATE TABLE t (a int)",
    "CREATE TYPE e1 AS ENUM ('a')",
    "CREATE TYPE e2 AS ENUM ('a')",
    'GRANT USAGE ON SCHEMA "{role}" TO PUBLIC',
    "GRANT SELECT ON t TO PUBLIC",
)
_VIEWS = (
    'CREATE VIEW w1 AS SELECT a FROM "{role}".t',
    'CREATE VIEW w2 AS SELECT a FROM "{role}".t',
)
_LEFT = (  # what the lease owns, the other's views
    "SELECT (SELECT count(*) FROM pg_shdepend WHERE refobjid = %(role)s::regrole"
    " AND deptype = 'o' AND dbid = (SELECT oid FROM pg_database"
    " WHERE datname = current_database())),"
    " (SELECT count(*) FROM pg_class WHERE relowner = %(other)s::regrole AND relkind = 'v')"
)


def test_an_admin_no_superuser_leaves_another_roles_objects_to_drop_owned(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """72a refuted: the drops run by an admin that is no superuser (a member of the lease's
    role only) with another lease's views on the lease's table: the lease's role owns its
    schema and the table only (its types dropped), the two views are still there."""
    admin_role = "admin72a_" + tmp_path.name[-8:].replace("-", "_")
    with orders.server.connect() as admin:
        admin.execute(f'CREATE ROLE "{admin_role}" NOSUPERUSER')
    try:
        left = after_drops(tmp_path, world, orders, _LENT, _VIEWS, _LEFT, as_role=admin_role)
    finally:
        with orders.server.connect() as admin:
            admin.execute(f'DROP ROLE "{admin_role}"')
    assert left == [(2, 2)]
