"""Review 70z, updaters (70w's catalog-row updaters; PostgreSQL tests: TROTH_REQUIRE_PG=1).

updaters 1: `DROP OWNED BY` a lease's role also revokes what another role granted it (and
what it granted with a grant option): it updates the ACL row of an object the lease does not
own (the other lease's table, column, schema, function, default privileges). 70w's
`updaters` only read the rows of what the lease owns and what depends on it: the second
lease, having granted the first SELECT on its table (committed), opens `GRANT INSERT ... TO
<first>` (no new dependency, no lock on the first's role) and never commits; the broker's
`REVOKE` of the first's privileges, then `DROP OWNED`, waited on the row at every retry, the
first lease REVOKING for as long as the second liked. The rows naming the role in
pg_shdepend (an ACL's grantee or grantor) are now read too, and the holders are ended before
that `REVOKE`.
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

_GIVEN = {  # committed by the second lease, then widened in its open transaction
    "table": ("GRANT SELECT ON {s}.t TO {a}", "GRANT INSERT ON {s}.t TO {a}"),
    "column": ("GRANT SELECT (x) ON {s}.t TO {a}", "GRANT INSERT (x) ON {s}.t TO {a}"),
    "schema": (
        "GRANT USAGE ON SCHEMA {s} TO {a}",
        "GRANT USAGE ON SCHEMA {s} TO {a} WITH GRANT OPTION",
    ),
    "function": (
        "GRANT EXECUTE ON FUNCTION {s}.f() TO {a}",
        "GRANT EXECUTE ON FUNCTION {s}.f() TO {a} WITH GRANT OPTION",
    ),
    "default": (
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT SELECT ON TABLES TO {a}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT INSERT ON TABLES TO {a}",
    ),
}


@pytest.mark.parametrize(("target", "prepared"), [(t, False) for t in _GIVEN] + [("table", True)])
def test_an_open_widening_of_a_grant_to_the_lease_cannot_keep_it_alive(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    prepared: bool,
) -> None:
    """70z updaters 1: the second lease's open GRANT to the first, on its own table (column,
    default privileges) the first already had a privilege on, updated the row DROP OWNED BY
    the first must update: it waited, failed its lock timeout at every retry, the lease
    REVOKING (prepared: for good). The revocation ends REVOKED, the holder ended."""
    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", 300)  # the step it blocks fails fast
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    first, second = (broker.issue(agent, SECRET, scope=["orders:write"], now=now()) for _ in "12")
    role, other = str(first.lease.engine_ref), str(second.lease.engine_ref)
    committed, opened = (g.format(s=f'"{other}"', a=f'"{role}"') for g in _GIVEN[target])
    holder = login(orders, second.credential.reveal())
    try:
        holder.execute(f'CREATE TABLE "{other}".t (x int)')
        holder.execute(f'CREATE FUNCTION "{other}".f() RETURNS int LANGUAGE sql AS $$SELECT 1$$')
        holder.execute(committed)
        assert_revoked_past_holder(
            broker,
            agent,
            first.lease_id,
            orders,
            holder,
            [opened],
            at=now(),
            prepare_as="review70z_updaters" if prepared else None,
        )
    finally:
        holder.close()
        broker.sweep(now() + 3600)
        broker.close()
