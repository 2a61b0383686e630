"""`Node.secrets`, the public API's face of the secrets broker (docs/python.md, "Leased
secrets"): acme's hub stores a token secret and publishes who may lease it; an agent leases,
lists, renews and gives back its own lease over a secure channel; the hub's operator revokes
every lease of an identity; a holder the authority revoked leases nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

import troth
from tests.support.brokers import PAYMENTS
from tests.support.public_api import Agents, acme_and_agents
from troth.secrets import IssuedLease

SUPPORT_LEASES = """\
@id("support-refunds") permit(principal, action == Action::"lease", resource == Secret::"payments")
  when { principal.hasTag("orders.access") && ["refunds"].containsAll(context.scope)
         && context.ttl <= 300 };
"""


@pytest.fixture
def world() -> Iterator[Agents]:
    """acme's hub brokering `payments` under SUPPORT_LEASES; agents' `support` a member."""
    with acme_and_agents() as made:
        stored = made.hub.secrets.put("payments", engine="token", config=PAYMENTS)
        assert (stored.engine, stored.scopes, stored.service_added) == (
            "token",
            ("charges", "refunds"),
            True,
        )
        made.hub.policies.publish(policies=SUPPORT_LEASES, tools={}, revision=1)
        yield made


def _at_hub(world: Agents, steps: object) -> None:
    """Run `steps(at, expect)` while the hub serves on a loopback port."""

    async def main() -> None:
        async with world.hub.serve(listen=("127.0.0.1", 0)) as running:
            await steps(running.address, running.identifier)  # type: ignore[operator]

    asyncio.run(main())


def test_lease_list_renew_and_give_back(world: Agents) -> None:
    secrets = world.agents.secrets

    async def steps(at: str, hub: troth.Identifier) -> None:
        issued = await secrets.lease(
            "payments", holder=world.support, broker=at, expect=hub, scope=["refunds"], ttl=60
        )
        assert isinstance(issued, IssuedLease)
        assert (issued.lease.secret, issued.lease.scope) == ("payments", ("refunds",))
        assert issued.lease.identity == world.support.identifier
        assert "token" in issued.credential.reveal()
        assert "hidden" in repr(issued.credential)
        (held,) = await secrets.leases(holder="support", broker=at, expect=hub)
        assert held.handle == issued.lease.handle
        lease, credential = await secrets.renew(
            issued.lease_id.text(), holder="support", broker=at, expect=hub, ttl=120
        )
        assert lease.expires_at > issued.lease.expires_at
        assert credential.reveal()["token"]
        ended = await secrets.give_back(issued.lease_id.text(), holder="support", broker=at)
        assert ended.state.name == "REVOKED"
        assert await secrets.leases(holder="support", broker=at, expect=hub) == []

    _at_hub(world, steps)


def test_a_lease_no_bundle_grants_is_refused(world: Agents) -> None:
    async def steps(at: str, hub: troth.Identifier) -> None:
        with pytest.raises(troth.SecretError) as charges:
            await world.agents.secrets.lease(
                "payments", holder="support", broker=at, expect=hub, scope=["charges"]
            )
        assert charges.value.reason is troth.SecretFailure.DENIED
        with pytest.raises(troth.SecretError) as too_long:
            await world.agents.secrets.lease(
                "payments", holder="support", broker=at, expect=hub, ttl=600
            )
        assert too_long.value.reason is troth.SecretFailure.DENIED

    _at_hub(world, steps)


def test_the_operator_revokes_a_holder_and_a_revoked_holder_leases_nothing(
    world: Agents,
) -> None:
    secrets = world.agents.secrets

    async def steps(at: str, hub: troth.Identifier) -> None:
        issued = await secrets.lease(
            "payments", holder="support", broker=at, expect=hub, scope=["refunds"]
        )
        (revoked,) = world.hub.secrets.revoke_holder(world.support)
        assert (revoked.handle, revoked.state.name) == (issued.lease.handle, "REVOKED")
        with pytest.raises(troth.SecretError) as renewed:
            await secrets.renew(issued.lease_id.text(), holder="support", broker=at, expect=hub)
        assert renewed.value.reason is troth.SecretFailure.REVOKED
        world.acme.revoke_identity(world.support, reason="compromised")
        # the hub holds the revocation at once: its channel refuses the revoked identity
        # (before review 63u, revocation 1, it learned it at its next poll of its store, and
        # its broker refused the lease only as one no current credential grants)
        with pytest.raises(troth.ChannelError) as gone:
            await secrets.lease(
                "payments", holder="support", broker=at, expect=hub, scope=["refunds"]
            )
        assert f"{world.support.identifier} is revoked" in str(gone.value)

    _at_hub(world, steps)


def test_jwks_and_key_rotation(world: Agents) -> None:
    (first,) = [key["kid"] for key in world.hub.secrets.jwks()["keys"]]
    rotated = world.hub.secrets.rotate_key()
    assert rotated.withdrawn == ()
    assert set(rotated.published) == {first, rotated.kid}
    compromised = world.hub.secrets.rotate_key(compromised=True)
    assert set(compromised.withdrawn) == {first, rotated.kid}
    assert [key["kid"] for key in world.hub.secrets.jwks()["keys"]] == [compromised.kid]


def test_a_bad_configuration_and_arguments_of_the_wrong_kind_are_refused(world: Agents) -> None:
    with pytest.raises(troth.SecretError) as bad:
        world.hub.secrets.put("orders-db", engine="token", config={"scopes": "not a list"})
    assert bad.value.reason is troth.SecretFailure.CONFIG_INVALID
    put = world.hub.secrets.put
    for call in (
        lambda: put("x", engine="vault", config=PAYMENTS),
        lambda: put("x", engine="token", config=json.dumps(PAYMENTS)),  # type: ignore[arg-type]
        lambda: put("x", engine="token", config=PAYMENTS, value="text"),  # type: ignore[arg-type]
        lambda: put("x", engine="token", config=PAYMENTS, grantable_by="acme"),
        lambda: world.hub.secrets.revoke_holder(7),  # type: ignore[arg-type]
    ):
        with pytest.raises(troth.ArgumentError):
            call()

    async def bad_route() -> None:
        with pytest.raises(troth.RoutingError):
            await world.agents.secrets.lease("payments", holder="support", broker="nowhere")
        with pytest.raises(troth.ArgumentError):  # a route to another service
            await world.agents.secrets.lease(
                "payments", holder="support", broker="/tcp/127.0.0.1:9/service/greet"
            )
        with pytest.raises(troth.ArgumentError):
            await world.agents.secrets.give_back("not-a-lease", holder="support", broker="x")

    asyncio.run(bad_route())
