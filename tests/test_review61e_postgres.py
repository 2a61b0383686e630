"""Review 61e, the postgres engine's leases (PostgreSQL tests: TROTH_REQUIRE_PG=1).

postgres 1: a lease's role was made with no CONNECTION LIMIT, so the holder of one lease could
open sessions until the server had no slot left (`max_connections`, less the superusers'
reserve): every other agent's lease then failed to log in ("too many clients"), and with an
admin that is no superuser the broker could not connect to revoke anything. A lease's role now
has a connection limit, the secret's `connection_limit` setting (default
`limits.POSTGRES_LEASE_CONNECTIONS`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import PgServer
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    login,
    orders,
    setup,
    world,
)
from tests.test_secrets_postgres import now as pg_now
from troth import limits
from troth.errors import SecretError, SecretFailure
from troth.secrets.engines.postgres import PostgresEngine


def _server_slots(pg_server: PgServer) -> int:
    with pg_server.connect() as admin:
        row = admin.execute(
            "SELECT current_setting('max_connections')::int"
            " - current_setting('superuser_reserved_connections')::int"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_one_lease_cannot_take_every_connection(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    pg_server: PgServer,
) -> None:
    """postgres 1: agent a opens sessions with its lease until refused; agent b's lease still
    logs in."""
    import psycopg

    broker = setup(tmp_path, world, orders)
    mine = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=pg_now())
    theirs = broker.issue(world.credential_b(), SECRET, scope=["orders:read"], now=pg_now())
    held: list[Any] = []
    try:
        for _ in range(_server_slots(pg_server)):
            try:
                held.append(login(orders, mine.credential.reveal()))
            except psycopg.OperationalError:
                break
        assert held  # the lease logs in
        login(orders, theirs.credential.reveal()).close()  # not starved by a's sessions
    finally:
        for session in held:
            session.close()
        broker.revoke(world.agent_a.identifier, mine.lease_id, now=pg_now())
        broker.revoke(world.agent_b.identifier, theirs.lease_id, now=pg_now())
        broker.close()


def test_a_secrets_connection_limit_is_checked() -> None:
    """postgres 1: `connection_limit` is a whole number of sessions in range, stored only when
    named (a configuration stored before it reads as it did)."""
    engine = PostgresEngine(role_prefix="tl_0123abcd_")
    base = {"dbname": "orders", "user": "admin", "templates": {"read": "reader"}}
    assert "connection_limit" not in engine.check_settings(base, ("read",))
    assert (
        engine.check_settings({**base, "connection_limit": 2}, ("read",))["connection_limit"] == 2
    )
    for bad in (0, -1, limits.POSTGRES_MAX_LEASE_CONNECTIONS + 1, True, "5", 2.0):
        with pytest.raises(SecretError) as refused:
            engine.check_settings({**base, "connection_limit": bad}, ("read",))
        assert refused.value.reason is SecretFailure.CONFIG_INVALID
