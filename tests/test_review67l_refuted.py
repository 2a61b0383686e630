"""Review 67l: attacks on 67f's leases revoked by a compromised rotation and on 67d's list of
what a held authority must revoke again that did not work (each a real attempt, failing if the
defence it names broke)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import troth
from tests import test_review67f_secrets as review67f
from tests.conftest import NOW
from tests.support.postgres import ADMIN_PASSWORD
from tests.support.public_api import READ, Agents, acme_and_agents
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` is a fixture
    OrdersDb,
    assert_session_ended,
    login,
    orders,
)
from troth.node import init_node, open_node

world = review67f.world  # the fixture: acme's hub brokering `payments` to its members


def leased(world: Agents, *holders: tuple[troth.Node, str]) -> None:
    """Each (node, local identity) leases `payments` (scope refunds) at acme's hub, served
    for the while."""

    async def main() -> None:
        async with world.hub.serve(listen=("127.0.0.1", 0)) as running:
            at, hub = running.address, running.identifier
            for node, holder in holders:
                await node.secrets.lease(
                    "payments", holder=holder, broker=at, expect=hub, scope=["refunds"]
                )

    asyncio.run(main())


def test_a_compromised_rotation_revokes_no_other_members_lease(world: Agents) -> None:
    """Over-revocation: `ops`, a member hosted on the broker's node, is rotated as compromised;
    `support`'s lease (same authority, same secret, its chain naming ops nowhere) stays live,
    only ops's ends (`leases_through` matches the identifier's digest whole)."""
    ops = world.hub.identities.create("ops")
    world.hub.enroll(world.acme.ticket(READ), identity=ops)

    leased(world, (world.agents, "support"), (world.hub, "ops"))
    world.hub.identities.rotate(ops, compromised=True)
    assert world.hub.secrets.revoke_holder(ops) == []  # revoked by the rotation
    ended = world.hub.secrets.revoke_holder(world.support)
    assert [lease.state.name for lease in ended] == ["REVOKED"]


def test_a_compromised_rotation_revokes_its_delegates_leases_too(world: Agents) -> None:
    """Under-revocation: `ops` (on the broker's node) delegated to `sub` (another node) before
    its key was copied; sub's lease, whose chain names ops as a link's issuer, ends with ops's
    compromised rotation (`leases_through`: a link's issuer, however far down)."""
    ops = world.hub.identities.create("ops")
    world.hub.enroll(world.acme.ticket(READ), identity=ops)
    chain = world.hub.delegate(ops, to=world.sub, attributes=READ, ttl=600, purpose="p")
    world.agents.hold(world.sub, chain)
    leased(world, (world.agents, "sub"))
    world.hub.identities.rotate(ops, compromised=True)
    assert world.hub.secrets.revoke_holder(world.sub) == []  # ended by the rotation


def test_a_refused_compromised_rotation_revokes_nothing(world: Agents) -> None:
    """A rotation that fails revokes no lease (the revocation follows the committed rotation:
    nothing lost, the identity unrotated): a `compromised` that is not a bool is refused
    first, and support's lease stays live."""
    leased(world, (world.agents, "support"))
    hub = world.hub.identity
    with pytest.raises(troth.ArgumentError, match="compromised"):
        world.hub.identities.rotate(hub, compromised="yes")  # type: ignore[arg-type]
    assert world.hub.identities.get(hub).changes == hub.changes  # not rotated
    ended = world.hub.secrets.revoke_holder(world.support)
    assert [lease.state.name for lease in ended] == ["REVOKED"]


def test_the_revoke_again_list_holds_each_loss_once_and_ends_with_its_hold(
    troth_home: object,
) -> None:
    """A flood: the same losses held twice (two failed re-revokes, the same target twice in
    one) are listed once each (the table's key); the release deletes them, so a later hold
    lists only its own."""
    init_node("acme")
    lost, later = b"\x01" * 32, b"\x02" * 32
    with open_node("acme") as node:
        authority = node.create_authority("acme", now=NOW)
        authority.store.hold(NOW, [("identity", lost)] * 1000 + [("credential", lost)])
        authority.store.hold(NOW + 1, [("identity", lost)])
        assert authority.store.revoke_again() == [("credential", lost), ("identity", lost)]
        assert authority.store.restore_held() == NOW  # the earliest hold kept
        assert authority.release_restored() == NOW
        assert authority.store.revoke_again() == []
        authority.store.hold(NOW + 2, [("supersession", later)])
        assert authority.store.revoke_again() == [("supersession", later)]


ORDERS_LEASES = """\
@id("readers") permit(principal, action == Action::"lease", resource == Secret::"orders-db")
  when { principal.hasTag("orders.access") && ["orders:read"].containsAll(context.scope) };
"""


def test_a_compromised_rotation_drops_the_postgres_lease_roles(
    orders: OrdersDb,  # noqa: F811
) -> None:
    """The PostgreSQL engine: support's lease role, a session open under it, ends with the
    hub's (its authority's) compromised rotation — the role dropped, the session terminated,
    not left to the role's VALID UNTIL (TROTH_REQUIRE_PG=1)."""
    with acme_and_agents() as world:
        world.hub.secrets.put(
            "orders-db", engine="postgres", config=orders.config(), value=ADMIN_PASSWORD.encode()
        )
        world.hub.policies.publish(policies=ORDERS_LEASES, tools={}, revision=1)

        async def main() -> dict[str, Any]:
            async with world.hub.serve(listen=("127.0.0.1", 0)) as running:
                issued = await world.agents.secrets.lease(
                    "orders-db",
                    holder="support",
                    broker=running.address,
                    expect=running.identifier,
                    scope=["orders:read"],
                )
                return issued.credential.reveal()

        session = login(orders, asyncio.run(main()))
        assert session.execute("SELECT total FROM orders").fetchall() == [(20,)]
        assert orders.lease_roles() != set()
        world.hub.identities.rotate(world.hub.identity, compromised=True)
        assert_session_ended(session)
        assert orders.lease_roles() == set()
