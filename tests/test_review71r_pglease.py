"""Review 71r, pglease (wave3b): a lease's objects against the revocation's bounded drops
(postgres_drops.py; PostgreSQL tests: TROTH_REQUIRE_PG=1).

pglease 1: the drops go kind by kind (relations before routines and types), newest first, and
an object that cannot be dropped because another of the lease's depends on it was left to
`DROP OWNED`, which drops all that is left in one transaction. A lease's dependency that runs
against that order (a function taking a table's row type, newer than the table; an older
view replaced to read a newer table) left every such table to `DROP OWNED`: thousands of
them filled the lock table again, at each retry (71b pglease 2's failure, by another road).
The drops now sweep again while a sweep dropped something and left something, at most
`DROP_SWEEPS` times.
"""

from __future__ import annotations

from pathlib import Path

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

_AGAINST_ORDER = (  # each leaves an older object another of the lease's newer ones needs
    "CREATE TABLE t (a int)",
    "CREATE FUNCTION g(t) RETURNS int LANGUAGE sql AS 'SELECT 1'",  # routines go after tables
    "CREATE VIEW v AS SELECT 1 AS a",
    "CREATE TABLE u (a int)",
    "CREATE OR REPLACE VIEW v AS SELECT a FROM u",  # the older view now reads the newer table
)


def _owned(admin: object, role: str) -> int:
    """What `role` owns in the connection's database (pg_shdepend)."""
    (count,) = admin.execute(  # type: ignore[attr-defined]
        "SELECT count(*) FROM pg_shdepend WHERE refobjid = %s::regrole AND deptype = 'o'"
        " AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
        (role,),
    ).fetchone()
    return int(count)


def test_an_object_needed_against_the_drop_order_is_not_left_to_drop_owned(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """71r pglease 1: the lease's table taken by a newer function and the newer table an
    older view reads: the drops leave the role owning nothing but its schema (they left both
    tables to DROP OWNED)."""
    from troth.secrets.engines import postgres_drops

    broker = setup(tmp_path, world, orders)
    try:
        issued = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
        role = str(issued.lease.engine_ref)
        with login(orders, issued.credential.reveal()) as session:
            for statement in _AGAINST_ORDER:
                session.execute(statement)
        with orders.server.connect(dbname=orders.dbname) as admin:
            postgres_drops.drop_objects(admin, role)
            assert _owned(admin, role) == 1  # its schema
    finally:
        broker.close()


def _chain(depth: int) -> list[str]:
    """`depth` views, each older one replaced to read the next newer one (made against the
    drop order: each sweep drops one)."""
    made = [f"CREATE VIEW c{i} AS SELECT 1 AS a" for i in range(depth)]
    return made + [
        f"CREATE OR REPLACE VIEW c{i} AS SELECT a FROM c{i + 1}"  # noqa: S608
        for i in reversed(range(depth - 1))
    ]


@pytest.mark.xfail(
    strict=True,
    reason="71r pglease 2: a chain made against the drop order deeper than DROP_SWEEPS leaves "
    "its rest to DROP OWNED (a sound fix orders the drops by pg_depend, leaves first)",
)
def test_a_chain_deeper_than_the_sweeps_is_not_left_to_drop_owned(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """71r pglease 2: DROP_SWEEPS + 2 views, each older one reading the next newer one: the
    drops leave the role owning nothing but its schema (they leave the chain's last two, and
    thousands of such chains fill DROP OWNED's lock table)."""
    from troth.secrets.engines import postgres_drops

    broker = setup(tmp_path, world, orders)
    try:
        issued = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
        role = str(issued.lease.engine_ref)
        with login(orders, issued.credential.reveal()) as session:
            for statement in _chain(postgres_drops.DROP_SWEEPS + 2):
                session.execute(statement)
        with orders.server.connect(dbname=orders.dbname) as admin:
            postgres_drops.drop_objects(admin, role)
            assert _owned(admin, role) == 1  # its schema
    finally:
        broker.close()


_VIEWS_ON = (  # the other lease's views (in its own schema) on the lease's table, 30
    "DO $$BEGIN FOR i IN 1..30 LOOP "
    "EXECUTE format('CREATE VIEW w%s AS SELECT a FROM %I.t', i, '{schema}'); END LOOP; END$$"
)


@pytest.mark.xfail(
    strict=True,
    reason="71r pglease 3: another role's objects that depend on the lease's are left to DROP "
    "OWNED's CASCADE, all in one transaction (a fix drops them a batch at a time first)",
)
def test_another_leases_views_on_the_leases_table_are_not_left_to_drop_owned(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """71r pglease 3: the lease lets any role read its table; another lease makes 30 views on
    it (batches of 10 locks here): the drops leave the table (it weighs 31) and DROP OWNED's
    CASCADE drops the 30 views in one transaction (7000 of them, some seconds' work for the
    other lease, fill the lock table at each retry, REVOKING while that lease lives)."""
    from troth.secrets.engines import postgres_drops

    monkeypatch.setattr(postgres_drops, "DROP_BATCH_LOCKS", 10)
    broker = setup(tmp_path, world, orders)
    try:
        mine, other = two_leases(broker, world.credential_a(), SECRET, now(), "orders:read")
        role = str(mine.lease.engine_ref)
        with login(orders, mine.credential.reveal()) as session:
            session.execute("CREATE TABLE t (a int)")
            session.execute(f'GRANT USAGE ON SCHEMA "{role}" TO PUBLIC')
            session.execute("GRANT SELECT ON t TO PUBLIC")
        with login(orders, other.credential.reveal()) as session:
            session.execute(_VIEWS_ON.replace("{schema}", role))
        with orders.server.connect(dbname=orders.dbname) as admin:
            postgres_drops.drop_objects(admin, role)
            assert _owned(admin, role) == 1  # its schema
    finally:
        broker.close()


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
    from troth.secrets.engines import postgres_drops

    broker = setup(tmp_path, world, orders)
    try:
        issued = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
        role = str(issued.lease.engine_ref)
        with login(orders, issued.credential.reveal()) as session:
            for statement in _PARTITIONED:
                session.execute(statement)
        with orders.server.connect(dbname=orders.dbname) as admin:
            postgres_drops.drop_objects(admin, role)
            assert _owned(admin, role) == 1  # its schema
    finally:
        broker.close()


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
    from troth.secrets.engines import postgres_drops

    monkeypatch.setattr(postgres_drops, "DROP_BATCH_LOCKS", 10)
    broker = setup(tmp_path, world, orders)
    try:
        issued = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
        role = str(issued.lease.engine_ref)
        with login(orders, issued.credential.reveal()) as session:
            session.execute(_IDENTITIES)
        with orders.server.connect(dbname=orders.dbname) as admin:
            postgres_drops.drop_objects(admin, role)
            assert _owned(admin, role) == 1  # its schema
    finally:
        broker.close()
