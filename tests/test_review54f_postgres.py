"""Review 54f against a real PostgreSQL server (the postgres engine's admin sessions).

Postgres 1: the engine keeps its admin connections open between calls, and one the server
closed while it sat idle (a restart, a failover, `pg_terminate_backend`, the server's
`idle_session_timeout`) was used as it was: the next call failed `ENGINE_FAILED`
("terminating connection due to administrator command"). An agent's issue failed, and its
revocation of a lease it wanted gone left the lease REVOKING with its role still able to log in
until the sweep's retry (`revoke_backoff`), one stale connection per database each costing a
failed attempt. A connection with anything to read while idle is now dropped and opened anew
before use."""

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
from troth.secrets import LeaseState


def end_admin_sessions(orders: OrdersDb) -> int:  # noqa: F811 - the fixture's name
    """Terminate every session of the engine's admin but this one (as a restart would)."""
    with orders.server.connect() as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
            "WHERE usename = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
            (orders.server.user,),
        ).fetchall()
    return sum(1 for (ok,) in rows if ok)


@pytest.mark.xfail(
    strict=True,
    reason="review 54f, postgres 1: a pooled admin session the server ended is used as it is",
)
def test_an_admin_session_the_server_ended_while_idle_is_opened_again(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """The admin's pooled sessions are ended between calls: the next issue succeeds, and the
    next revocation ends the lease (its role gone, its password refused) at once."""
    import psycopg

    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    first = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    assert end_admin_sessions(orders) >= 1
    second = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    assert second.lease.state is LeaseState.ACTIVE
    assert end_admin_sessions(orders) >= 1
    revoked = broker.revoke(agent, first.lease_id, now=now())
    assert revoked.state is LeaseState.REVOKED
    assert first.lease.engine_ref not in orders.roles("tl_")
    try:
        login(orders, first.credential.reveal()).close()
    except psycopg.OperationalError as exc:
        assert "password authentication failed" in str(exc)
    else:
        raise AssertionError("the revoked lease's role still logs in")
    broker.revoke(agent, second.lease_id, now=now())
    broker.close()
