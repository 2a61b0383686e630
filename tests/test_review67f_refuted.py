"""Review 67f: attacks on the secret broker and its postgres engine that did not work (each a
real attempt, failing if the defence it names broke; PostgreSQL tests: TROTH_REQUIRE_PG=1).
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
