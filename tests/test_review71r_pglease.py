"""Review 71r, pglease (wave3b): a lease's objects against the revocation's bounded drops
(postgres_drops.py; PostgreSQL tests: TROTH_REQUIRE_PG=1). Each leaves objects of the lease's
role to `DROP OWNED`, which drops all that is left in one transaction: thousands of them fill
the server's lock table at each retry (71b pglease 2's failure, by other roads).

pglease 1: the drops go kind by kind (relations before routines and types), newest first, and
an object another of the lease's depends on cannot be dropped. A dependency that runs against
that order (a function taking a table's row type, newer than the table; an older view
replaced to read a newer table) left every such table. The drops now sweep again while a
sweep dropped something and left something, at most `DROP_SWEEPS` times.

pglease 2 (fixed in review 72a): a chain against that order deeper than the sweeps.

pglease 3 (fixed in review 72a): another role's objects on the lease's (another lease's 7000
views on the lease's table, in the schema it let PUBLIC use) went with `DROP OWNED`'s CASCADE,
all at once.

pglease 4: a partitioned table depends internally on its own key columns: read as a part of
another object, it was never dropped by the drops. A dependency on itself is now no part.

pglease 5: an object weighing more than a batch (a table of 1001 identity columns, a sequence
each) was skipped: seven of them fill the lock table. It now goes alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import two_leases
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    login,
    now,
    orders,
    setup,
    world,
)
from troth.secrets.engines import postgres_drops

_OWNED = (  # what a role owns in the database (pg_shdepend; 1: its schema)
    "SELECT count(*) FROM pg_shdepend WHERE refobjid = %(role)s::regrole AND deptype = 'o'"
    " AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def after_drops(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    mine: Sequence[str],
    theirs: Sequence[str] = (),
    query: str = _OWNED,
    then: Sequence[str] = (),
    as_role: str | None = None,
) -> list[tuple[Any, ...]]:
    """`query`'s rows (`%(role)s`, `%(other)s`: the two leases' roles) in `orders`' database
    after a lease ran `mine`, another lease `theirs`, the first `then` (`{role}`, `{other}`:
    the leases' roles), and the revocation's drops for the first
    (`postgres_drops.drop_objects`; by `as_role`, made a member of the first's, when given)."""
    broker = setup(tmp_path, world, orders)
    try:
        leases = two_leases(broker, world.credential_a(), SECRET, now(), "orders:read")
        role, other = (str(issued.lease.engine_ref) for issued in leases)
        for issued, statements in zip((*leases, leases[0]), (mine, theirs, then), strict=True):
            with login(orders, issued.credential.reveal()) as session:
                for statement in statements:
                    session.execute(statement.replace("{role}", role).replace("{other}", other))
        with orders.server.connect(dbname=orders.dbname) as admin:
            if as_role is not None:
                admin.execute(f'GRANT "{role}" TO "{as_role}"')
                admin.execute(f'SET ROLE "{as_role}"')
            postgres_drops.drop_objects(admin, role)
            admin.execute("RESET ROLE")
            rows: list[tuple[Any, ...]] = admin.execute(
                query, {"role": role, "other": other}
            ).fetchall()
            return rows
    finally:
        broker.close()


def owned_after_drops(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    mine: Sequence[str],
    theirs: Sequence[str] = (),
) -> int:
    """What a lease's role owns in `orders`' database (pg_shdepend; 1: its schema) after the
    lease ran `mine`, another lease `theirs` (`{role}`: the first lease's role), and the
    revocation's drops for the first (`after_drops`)."""
    ((count,),) = after_drops(tmp_path, world, orders, mine, theirs)
    return int(count)


_AGAINST_ORDER = (  # each leaves an older object another of the lease's newer ones needs
    "CREATE TABLE t (a int)",
    "CREATE FUNCTION g(t) RETURNS int LANGUAGE sql AS 'SELECT 1'",  # routines go after tables
    "CREATE VIEW v AS SELECT 1 AS a",
    "CREATE TABLE u (a int)",
    "CREATE OR REPLACE VIEW v AS SELECT a FROM u",  # the older view now reads the newer table
)


def test_an_object_needed_against_the_drop_order_is_not_left_to_drop_owned(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """71r pglease 1: the lease's table taken by a newer function and the newer table an
    older view reads: the drops leave the role owning nothing but its schema (they left both
    tables to DROP OWNED)."""
    assert owned_after_drops(tmp_path, world, orders, _AGAINST_ORDER) == 1


def _chain(depth: int) -> list[str]:
    """`depth` views, each older one replaced to read the next newer one (made against the
    drop order: each sweep drops one)."""
    made = [f"CREATE VIEW c{i} AS SELECT 1 AS a" for i in range(depth)]
    return made + [
        f"CREATE OR REPLACE VIEW c{i} AS SELECT a FROM c{i + 1}"  # noqa: S608
        for i in reversed(range(depth - 1))
    ]


def test_a_chain_deeper_than_the_sweeps_is_not_left_to_drop_owned(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """71r pglease 2: DROP_SWEEPS + 2 views, each older one reading the next newer one: the
    drops leave the role owning nothing but its schema (they left the chain's last two, and
    thousands of such chains fill DROP OWNED's lock table). Fixed in review 72a: the drops go
    in pg_depend's order, each object before those it depends on."""
    chain = _chain(postgres_drops.DROP_SWEEPS + 2)
    assert owned_after_drops(tmp_path, world, orders, chain) == 1


_SHARED = ("CREATE TABLE t (a int)", 'GRANT USAGE ON SCHEMA "{role}" TO PUBLIC')
_VIEWS_ON = (  # the other lease's views (in its own schema) on the lease's table, 30
    "DO $$BEGIN FOR i IN 1..30 LOOP "
    "EXECUTE format('CREATE VIEW w%s AS SELECT a FROM %I.t', i, '{role}'); END LOOP; END$$"
)


def test_another_leases_views_on_the_leases_table_are_not_left_to_drop_owned(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """71r pglease 3: the lease lets any role use its schema; another lease makes 30 views on
    it (batches of 10 locks here): the drops leave the table (dropping it alone fails on the
    views) and DROP OWNED's CASCADE drops the 30 views in one transaction (7000 of them, some
    seconds' work for the other lease, fill the lock table at each retry, REVOKING while that
    lease lives). Fixed in review 72a: what depends on the lease's objects is dropped with
    them, a batch at a time, before them."""
    monkeypatch.setattr(postgres_drops, "DROP_BATCH_LOCKS", 10)
    assert owned_after_drops(tmp_path, world, orders, _SHARED, [_VIEWS_ON]) == 1


_PARTITIONED = (
    "CREATE TABLE pt (a int, b int) PARTITION BY RANGE (a, b)",
    "CREATE TABLE pl (a int) PARTITION BY LIST (a)",
)


def test_a_partitioned_table_is_not_left_to_drop_owned(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """71r pglease 4: a partitioned table depends on its own key columns, internally: read as
    a part of another object, it was never dropped by the drops but left to `DROP OWNED`, all
    in one transaction (thousands of them: the lock table full at each retry). The drops now
    leave the role owning nothing but its schema."""
    assert owned_after_drops(tmp_path, world, orders, _PARTITIONED) == 1


_IDENTITIES = (  # two tables of 12 identity columns: each weighs 14 (its sequences, row type)
    "DO $$BEGIN FOR t IN 1..2 LOOP EXECUTE format('CREATE TABLE h%s (' || (SELECT string_agg("
    "'c' || i || ' int GENERATED ALWAYS AS IDENTITY', ', ') FROM generate_series(1, 12) i)"
    " || ')', t); END LOOP; END$$"
)


def test_an_object_heavier_than_a_batch_is_not_left_to_drop_owned(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """71r pglease 5: an object weighing more than a batch (a table of 1001 identity columns,
    a sequence each) was left to `DROP OWNED`, which took seven of them (7000 locks) in one
    transaction, the lock table full at each retry. Here two tables weighing 14 against
    batches of 10 locks: each now goes alone in a transaction of its own, and the role owns
    nothing but its schema."""
    monkeypatch.setattr(postgres_drops, "DROP_BATCH_LOCKS", 10)
    assert owned_after_drops(tmp_path, world, orders, [_IDENTITIES]) == 1
