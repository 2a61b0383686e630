"""Review 72t, cascade: a property test of a revocation's drops (postgres_drops.py, reviews 72a
and 72n) against plain `DROP OWNED BY role CASCADE` (PostgreSQL tests: TROTH_REQUIRE_PG=1).
Random graphs of the lease's, another lease's and the admin's objects depending on each other
(`tests.support.pg_graph`), each in a transaction rolled back: after the drops every object of
another role that CASCADE keeps is there with its rows, and after `drop_owned` the database is
what CASCADE leaves (objects and rows) and the lease owns nothing. Refuted: 400 graphs of 60
steps each (off the suite; 25 of up to 30 steps in it) found no object or row of another role
that the drops took and CASCADE keeps.

cascade 1: another lease's view whose column is of the lease's domain, replaced to read its
function returning the view's rows: PostgreSQL's `DROP OWNED BY lease CASCADE` fails "could
not open relation with OID" (15.18; `DROP DOMAIN ... CASCADE` alike), at each retry of the
revocation, and the drops left the view to it (their reach took no column's dependent). A
view's column now reaches the view (CASCADE drops the view), which the drops take first.

cascade 2: another role's table with a TOAST table (a text column) among the objects the drops
take (in the lease's schema, or depending on the lease's): its TOAST table's index, reached as
a part of it, was dropped on its own: "permission denied" (a system catalog) stopped the drops
at its batch, all the rest left to `DROP OWNED`'s one transaction (71b pglease 2). No
relation of pg_toast is read now (it goes with its table)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import pg_graph
from tests.support.postgres import PgServer
from troth.secrets.engines import postgres_drops

_STEPS = st.lists(
    st.tuples(
        st.integers(0, len(pg_graph.ACTORS) - 1),
        st.integers(0, len(pg_graph.MAKERS) - 1),
        st.lists(st.integers(0, 99), min_size=2, max_size=4),
    ),
    min_size=1,
    max_size=30,
)


@pytest.fixture(scope="module")
def admin(pg_server: PgServer) -> Iterator[Any]:
    """The admin's (a superuser's) autocommit connection: each example in a transaction."""
    with pg_server.connect() as conn:
        yield conn


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(steps=_STEPS, data=st.data())
def test_the_drops_leave_all_that_cascade_leaves_of_other_roles(
    admin: Any, steps: list[tuple[int, int, list[int]]], data: st.DataObject
) -> None:
    """72t refuted: random graphs of the lease's objects and another lease's and the admin's
    on them (views over views, columns of its types, defaults and generated columns calling its
    functions, foreign keys, inheritance, partitions, triggers, policies, rules, statistics,
    cycles, objects given away): the drops take no object of another role (nor rows) that
    CASCADE keeps; then `drop_owned` leaves what CASCADE leaves and the lease owns nothing."""
    with admin.transaction(force_rollback=True):
        graph = pg_graph.build(admin, steps, lambda names: data.draw(st.sampled_from(names)))
        out = pg_graph.compare(admin, postgres_drops.drop_objects)
    made = "\n".join(graph.made)
    if out.cascade is None:  # PostgreSQL's own failure (cascade 1): never claimed done
        assert out.final is None or out.owned == 0, made
        return
    assert out.cascade.objects - out.drops.objects == set(), made
    counts = {table: rows.split()[0] for table, rows in out.cascade.rows.items()}
    kept = {table: out.drops.rows.get(table, "-").split()[0] for table in counts}
    assert kept == counts, made
    assert out.final is not None, made
    assert (out.final.objects, out.final.rows, out.owned) == (
        out.cascade.objects,
        out.cascade.rows,
        0,
    ), made


_VIEW_CYCLE = (  # (role, statement): another lease's view of the lease's domain, in a cycle
    (pg_graph.LEASE, f"CREATE DOMAIN {pg_graph.LEASE}.d AS int"),
    (pg_graph.OTHER, f"CREATE VIEW {pg_graph.OTHER}.v AS SELECT 1::{pg_graph.LEASE}.d AS a"),
    (
        pg_graph.OTHER,
        f"CREATE FUNCTION {pg_graph.OTHER}.f() RETURNS SETOF {pg_graph.OTHER}.v LANGUAGE sql"  # noqa: S608
        f" AS 'SELECT * FROM {pg_graph.OTHER}.v'",
    ),
    (
        pg_graph.OTHER,
        f"CREATE OR REPLACE VIEW {pg_graph.OTHER}.v AS SELECT * FROM {pg_graph.OTHER}.f()",  # noqa: S608
    ),
)


def test_another_leases_view_cycle_of_the_leases_domain_ends_the_revocation(admin: Any) -> None:
    """72t cascade 1: another lease's view with a column of the lease's domain, replaced to
    read a function returning the view's rows: PostgreSQL's `DROP OWNED BY lease CASCADE` fails
    "could not open relation" at each retry, and the drops left the view to it: the revocation
    never ended. The drops now take the view (and its function) first."""
    with admin.transaction(force_rollback=True):
        for statement in pg_graph._SETUP:
            admin.execute(statement)
        for role, statement in _VIEW_CYCLE:
            admin.execute(f"SET ROLE {role}; {statement}; RESET ROLE")
        out = pg_graph.compare(admin, postgres_drops.drop_objects)
    assert out.final is not None
    assert out.owned == 0


_TOASTED = (  # (role, statement): another lease's table with a TOAST table in the lease's
    # schema (which lets PUBLIC create there): dropped with the schema by CASCADE
    (pg_graph.LEASE, f"CREATE TABLE {pg_graph.LEASE}.t (a int)"),
    (pg_graph.OTHER, f"CREATE TABLE {pg_graph.LEASE}.o (b text)"),
)


def test_another_leases_toasted_table_on_the_leases_stops_no_drops(admin: Any) -> None:
    """72t cascade 2: another lease's table (with a text column: a TOAST table) in the lease's
    schema: its TOAST table's index was read as another role's object depending on the
    lease's, and `DROP INDEX` on it (a system catalog: permission denied) stopped the drops,
    leaving all the lease's objects to `DROP OWNED` (one transaction: 71b pglease 2)."""
    with admin.transaction(force_rollback=True):
        for statement in pg_graph._SETUP:
            admin.execute(statement)
        for role, statement in _TOASTED:
            admin.execute(f"SET ROLE {role}; {statement}; RESET ROLE")
        postgres_drops.drop_objects(admin, pg_graph.LEASE)
        left = admin.execute(
            "SELECT count(*) FROM pg_class WHERE relnamespace = %s::regnamespace", (pg_graph.LEASE,)
        )
        assert left.fetchall() == [(0,)]
