"""Review 60l, postgres 1 (of review 60z's fix): troth's GRANTs and REVOKEs waited for a
PostgreSQL advisory lock (`postgres_grants.GRANTS_LOCK`), but an advisory lock is open to every
role that may connect: a lease's own holder (or any database user) that took it with
`pg_advisory_lock` and kept its session made every later issue wait the lock timeout and fail,
and so every revocation's REVOKE in that database. troth's GRANTs and REVOKEs no longer take a
lock anyone can hold: one that PostgreSQL refuses as concurrently updated is tried again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.leases import LeaseWorld
from tests.test_secrets_postgres import (  # noqa: F401 - fixtures
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
from troth.secrets.engines import postgres_grants


def test_a_lease_holding_the_grants_lock_blocks_no_issue_nor_revocation(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", 300)  # the wait, not its length
    broker = setup(tmp_path, world, orders)
    holder = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
    session = login(orders, holder.credential.reveal())
    try:  # the key is in troth's source (and in pg_locks while a broker holds it)
        lock = getattr(postgres_grants, "GRANTS_LOCK", 0x74726F74685F6772)
        session.execute("SELECT pg_advisory_lock(%s)", (lock,))
        other = world.credential_b()
        issued = broker.issue(other, SECRET, scope=["orders:read"], now=now())
        assert login(orders, issued.credential.reveal()).execute(
            "SELECT count(*) FROM orders"
        ).fetchone() == (1,)
        assert broker.revoke(other, issued.lease_id, now=now()).state is LeaseState.REVOKED
    finally:
        session.close()
        broker.close()
