"""Review 67f: attacks on the secret broker and its postgres engine that did not work (each a
real attempt, failing if the defence it names broke; PostgreSQL tests: TROTH_REQUIRE_PG=1).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.leases import LeaseWorld, open_broker
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    assert_session_ended,
    login,
    now,
    orders,
    setup,
    world,
)
from troth.secrets import AllowListPolicy, LeaseState


def test_a_lease_role_reaches_its_template_by_no_grant_of_its_own(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """A member's lease role tries to make the scope's template reach it (granting itself to
    it: PostgreSQL 15 and older let a role so grant itself from its own session, and the
    template check would then meet a lease role owning a large object, refusing every
    member's lease of the scope) and grants the template rights on its large object: another
    member's lease of the scope is issued, renewed and revoked as before, copying nothing of
    the lease's (the objects of lease roles are no template's: review 56b)."""
    import psycopg

    broker = setup(tmp_path, world, orders)
    thief = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
    credential = thief.credential.reveal()
    with login(orders, credential) as session:
        (oid,) = session.execute("SELECT lo_create(0)").fetchone()
        session.execute(f"GRANT SELECT, UPDATE ON LARGE OBJECT {oid} TO {orders.reader}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # the server's own rule
            session.execute(f'GRANT "{credential["user"]}" TO {orders.reader}')
    other = broker.issue(world.credential_b(), SECRET, scope=["orders:read"], now=now())
    with login(orders, other.credential.reveal()) as session:
        assert session.execute("SELECT total FROM orders").fetchall() == [(20,)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            session.execute("SELECT lo_get(%s)", (oid,))
    renewed, _ = broker.renew(world.credential_b(), other.lease_id, now=now(), ttl=120)
    assert renewed.expires_at > other.lease.expires_at
    broker.revoke_lease(thief.lease.handle, now=now())
    broker.revoke_lease(other.lease.handle, now=now())
    assert orders.lease_roles() == set()
    with orders.server.connect(dbname=orders.dbname) as admin:
        assert admin.execute(
            "SELECT count(*) FROM pg_largeobject_metadata WHERE oid = %s", (oid,)
        ).fetchone() == (0,)


def test_a_lease_that_expired_while_the_node_was_down_is_dropped_at_its_start(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """The broker stops with a live lease whose holder keeps a session open (VALID UNTIL ends
    new logins only); the lease expires meanwhile. The broker opened again over node.db sweeps
    as a node's start does: the role is dropped and the open session ended."""
    broker = setup(tmp_path, world, orders)
    start = now()
    issued = broker.issue(world.credential_a(), SECRET, ttl=30, now=start)
    session = login(orders, issued.credential.reveal())
    broker.close()
    policy = AllowListPolicy({world.agent_a.identifier: {SECRET: None}})
    _db, again = open_broker(tmp_path / "node.db", now=start + 60, policy=policy)
    report = again.sweep(start + 60, after_restart=True)
    assert (report.expired, report.failed) == (1, 0)
    assert_session_ended(session)
    assert orders.lease_roles() == set()
    stored = again.book.lease(issued.lease.handle)
    assert stored is not None
    assert stored.state is LeaseState.REVOKED
    again.close()
