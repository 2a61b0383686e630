"""Review 67f: attacks on the secret broker and its postgres engine that did not work (each a
real attempt, failing if the defence it names broke; PostgreSQL tests: TROTH_REQUIRE_PG=1).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.leases import LeaseWorld, RemoteStub, make_world, open_broker
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
from troth.errors import SecretError, SecretFailure
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


def test_a_revocation_by_another_broker_during_a_renewal_is_not_undone(tmp_path: Path) -> None:
    """Two processes over one node.db (a daemon and a CLI command): while one renews a remote
    engine's lease (its server's round trip, no write transaction open), the other revokes
    it. The renewal is refused REVOKED and the lease stays revoked, its expiry not moved."""
    start = now()
    lease_world = make_world(start)
    path = tmp_path / "node.db"
    policy = AllowListPolicy({lease_world.agent_b.identifier: {"api": None}})
    _db, renewing = open_broker(path, now=start, policy=policy)
    engine = RemoteStub()
    renewing.engines[engine.kind] = engine
    renewing.put_secret("api", engine.kind, {"server": "s"}, b"", now=start)
    issued = renewing.issue(lease_world.credential_b(), "api", now=start, ttl=60)
    _other_db, revoking = open_broker(path, now=start, policy=policy)
    revoking.engines[engine.kind] = RemoteStub()

    def revoke() -> None:  # where the real engine talks to its server
        revoking.revoke_lease(issued.lease.handle, now=start + 1)

    engine.during_issue = revoke
    with pytest.raises(SecretError) as refused:
        renewing.renew(lease_world.credential_b(), issued.lease_id, now=start + 1, ttl=600)
    assert refused.value.reason is SecretFailure.REVOKED
    for broker in (renewing, revoking):
        stored = broker.book.lease(issued.lease.handle)
        assert stored is not None
        assert (stored.state, stored.expires_at) == (LeaseState.REVOKED, issued.lease.expires_at)
        broker.close()
