"""Review 64r, the postgres engine's leases across failures (PostgreSQL tests: TROTH_REQUIRE_PG=1).

postgres 1: a member's lease revoked while the broker could not log in to PostgreSQL as its
admin (the admin's password changed on the server: a rotation, a DBA's reset) stays REVOKING,
its role able to log in and read, and each failed retry doubles the wait, up to
`REVOKE_RETRY_MAX` (30 minutes). The operator then stores the admin's new password
(`put_secret`, same server): docs/secrets.md promises an operator's `put_secret` tries the
stuck revocations at once, but it only did so when the secret moved to another server; at the
same server nothing was tried, and the revoked member's role kept logging in until its next
retry came, up to 30 minutes after the fix. `put_secret` now tries the secret's REVOKING leases
at once (an operator's call: `early`, within the batch's budget of engine time) after storing
the new value; a failure leaves them REVOKING with their backoff, as before.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.leases import LeaseWorld, open_broker
from tests.support.postgres import PgServer
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    login,
    now,
    orders,
    world,
)
from troth.secrets import AllowListPolicy, LeaseState
from troth.secrets.book import REVOKE_RETRY_MAX, revoke_backoff


@pytest.fixture
def admin(pg_server: PgServer) -> Iterator[str]:
    """A superuser of this test alone (its password changed by the test), dropped after it."""
    name = f"adm_{uuid.uuid4().hex[:10]}"
    with pg_server.connect() as conn:
        conn.execute(f"CREATE ROLE {name} SUPERUSER LOGIN PASSWORD 'first-{name}'")
    try:
        yield name
    finally:
        with pg_server.connect() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = %s",
                (name,),
            )
            conn.execute(f"DROP ROLE IF EXISTS {name}")


def test_put_secret_with_the_fixed_password_ends_a_stuck_revocation_at_once(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    pg_server: PgServer,
    admin: str,
) -> None:
    """postgres 1: the admin's password changes on the server; agent a's lease is revoked and
    its retries fail until the backoff is at its cap; the operator stores the new password:
    the role is gone at once, not at the next retry 30 minutes later."""
    import psycopg

    policy = AllowListPolicy({world.agent_a.identifier: {SECRET: None}})
    _db, broker = open_broker(tmp_path / "node.db", now=now(), policy=policy)
    config = orders.config(user=admin)
    broker.put_secret(SECRET, "postgres", config, f"first-{admin}".encode(), now=now())
    issued = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
    role = str(issued.credential.reveal()["user"])
    at = now()
    try:
        with pg_server.connect() as conn:  # rotated on the server, its sessions ended
            conn.execute(f"ALTER ROLE {admin} PASSWORD 'second-{admin}'")
            conn.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = %s",
                (admin,),
            )
        broker.revoke(world.credential_a(), issued.lease_id, now=at)
        attempts = 1
        while revoke_backoff(attempts) < REVOKE_RETRY_MAX:  # each due retry fails
            at += revoke_backoff(attempts)
            assert broker.sweep(at).failed == 1
            attempts += 1
        lease = broker.book.lease(issued.lease_id.handle)
        assert lease is not None
        assert lease.state is LeaseState.REVOKING
        login(orders, issued.credential.reveal()).close()  # the revoked lease still logs in

        broker.put_secret(SECRET, "postgres", config, f"second-{admin}".encode(), now=at)
        broker.sweep(at)  # the node's next maintenance round
        lease = broker.book.lease(issued.lease_id.handle)
        assert lease is not None
        assert lease.state is LeaseState.REVOKED
        assert role not in orders.lease_roles()
        with pytest.raises(psycopg.OperationalError):
            login(orders, issued.credential.reveal()).close()
    finally:  # cleanup: the role dropped whatever failed above
        with pg_server.connect() as conn:
            conn.execute(f"ALTER ROLE {admin} PASSWORD 'second-{admin}'")
        broker.put_secret(SECRET, "postgres", config, f"second-{admin}".encode(), now=at)
        broker.revoke_lease(issued.lease_id.handle, now=at)
        broker.close()
        _db.close()
