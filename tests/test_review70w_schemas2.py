"""Review 70w, postgres schemas (70n's per-lease schemas; PostgreSQL tests: TROTH_REQUIRE_PG=1).

schemas2 1: a lease's transaction that updated the catalog row of another lease's object and
stays open (agent a's lease gives agent b's USAGE on its schema WITH GRANT OPTION; b's lease
runs `GRANT USAGE ON SCHEMA <a's> TO PUBLIC` and never commits) holds no lock on that object,
only its transaction id: `DROP OWNED` of a's role waited on the row for its lock timeout at
every retry, a's lease REVOKING and its schema (its tables, which b may read) alive for as long
as b liked. Such a lease session is now found by the row's `xmax` and ended like one holding a
lock on the lease's objects (review 44b, postgres 1; 70n, schemas 4).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import assert_revoked_past_holder
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

_GRANTS = {  # what the first lease gives the second (a grant option), which it grants PUBLIC
    "schema": "USAGE ON SCHEMA {s}",
    "table": "SELECT ON {s}.kept",
    "column": "SELECT (x) ON {s}.kept",
}


@pytest.mark.parametrize(
    ("target", "prepared"),
    [("schema", False), ("schema", True), ("table", False), ("column", False)],
)
def test_a_leases_open_update_of_another_leases_schema_row_cannot_keep_it_alive(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    prepared: bool,
) -> None:
    """70w schemas2 1: the second lease's open `GRANT` on the first's schema (a grant option
    the first gave it) updated the schema's pg_namespace row (its table's pg_class row, its
    column's pg_attribute row alike): `DROP OWNED` of the first's role waited on it, failed
    its lock timeout at every retry, the lease REVOKING for as long as the second liked (or,
    prepared, for good). The revocation ends REVOKED, the role and its schema gone, the
    holder's session ended (its prepared transaction rolled back)."""
    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", 300)  # the step it blocks fails fast
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    first, second = (broker.issue(agent, SECRET, scope=["orders:write"], now=now()) for _ in "12")
    role, other = str(first.lease.engine_ref), str(second.lease.engine_ref)
    with login(orders, first.credential.reveal()) as session:
        session.execute(f'CREATE TABLE "{role}".kept (x int)')
        session.execute(f'GRANT USAGE ON SCHEMA "{role}" TO "{other}" WITH GRANT OPTION')
        given = _GRANTS[target].format(s=f'"{role}"')
        session.execute(f'GRANT {given} TO "{other}" WITH GRANT OPTION')
    holder = login(orders, second.credential.reveal())
    try:
        assert_revoked_past_holder(
            broker,
            agent,
            first.lease_id,
            orders,
            holder,
            [f"GRANT {given} TO PUBLIC"],
            at=now(),
            prepare_as="review70w_schemas2" if prepared else None,
        )
    finally:
        holder.close()
        broker.sweep(now() + 3600)
        broker.close()
