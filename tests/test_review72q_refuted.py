"""Review 72q, savepoint: attacks on the revocation's watcher (`postgres_waits`) that did not
work (PostgreSQL tests: TROTH_REQUIRE_PG=1).

- Another lease's widening GRANT to the lease made in a savepoint it then rolls back (`ROLLBACK
  TO SAVEPOINT`), its transaction kept open: the ACL row's `xmax` is an aborted
  subtransaction's, which nothing waits on. The revocation completes at once and leaves that
  session alone: only a transaction a statement actually waits on is ended.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.leases import LeaseWorld
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


def test_a_grant_rolled_back_to_its_savepoint_holds_nothing_and_its_session_lives(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """72q refuted: 70z's widening GRANT in a savepoint rolled back, the holder's transaction
    open: the lease ends REVOKED and the holder's session still answers."""
    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", 3000)
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    first, second = (broker.issue(agent, SECRET, scope=["orders:write"], now=now()) for _ in "12")
    role, other = str(first.lease.engine_ref), str(second.lease.engine_ref)
    holder = login(orders, second.credential.reveal())
    try:
        holder.execute(f'CREATE TABLE "{other}".t (x int)')
        holder.execute(f'GRANT SELECT ON "{other}".t TO "{role}"')
        for statement in [
            "BEGIN",
            "SAVEPOINT s",
            f'GRANT INSERT ON "{other}".t TO "{role}"',
            "ROLLBACK TO SAVEPOINT s",
        ]:
            holder.execute(statement)
        assert broker.revoke(agent, first.lease_id, now=now()).state is LeaseState.REVOKED
        assert role not in orders.lease_roles()
        assert holder.execute("SELECT 1").fetchone() == (1,)
    finally:
        holder.close()
        broker.sweep(now() + 3600)
        broker.close()
