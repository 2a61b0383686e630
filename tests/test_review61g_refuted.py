"""Review 61g: attacks on `Node.policies` and `Node.secrets` that did not work (each a real
attempt that fails if the defence breaks)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

import troth
from tests.support.brokers import PAYMENTS
from tests.support.gates import POLICIES, export_customers, lookup_order, refund
from tests.support.public_api import acme_and_agents

TOOLS = {f.__name__: f for f in (lookup_order, refund, export_customers)}
LEASES = """\
@id("any") permit(principal, action == Action::"lease", resource == Secret::"payments")
  when { principal.hasTag("orders.access") };
"""


def test_a_credential_claimed_for_another_holder_is_denied() -> None:
    """`decide` with a member's Credential whose `holder` names another identity (the chain's
    bytes unchanged): the chain is verified as presented by that identity, and refused."""
    with acme_and_agents() as world:
        world.hub.policies.publish(policies=POLICIES, tools=TOOLS, revision=1)
        honest = world.hub.policies.decide(world.member, "lookup_order", {"order_id": "1"})
        assert honest.allowed
        stolen = dataclasses.replace(world.member, holder=world.sub.identifier)
        decision = world.hub.policies.decide(stolen, "lookup_order", {"order_id": "1"})
        assert (decision.allowed, decision.outcome) == (False, troth.Outcome.CREDENTIAL)


def test_a_bundle_swapped_back_to_an_older_revision_is_refused() -> None:
    """Revision 1 re-installed on a node holding revision 2 (a replayed older bundle)."""
    with acme_and_agents() as world:
        older = world.hub.policies.sign(policies=POLICIES, tools=TOOLS, revision=1)
        newer = world.hub.policies.sign(policies=POLICIES, tools=TOOLS, revision=2)
        world.agents.policies.install(newer)
        with pytest.raises(troth.PolicyError) as refused:
            world.agents.policies.install(older)
        assert refused.value.reason is troth.PolicyFailure.ROLLBACK
        assert [b.revision for b in world.agents.policies.show()] == [2]


def test_another_identity_can_neither_list_nor_give_back_a_lease_it_does_not_hold() -> None:
    """`sub` (a member too) presents `support`'s lease id at the broker."""
    with acme_and_agents() as world:
        world.agents.enroll(world.acme.ticket({"orders.access": "read"}), identity=world.sub)
        world.hub.secrets.put("payments", engine="token", config=PAYMENTS)
        world.hub.policies.publish(policies=LEASES, tools={}, revision=1)
        secrets = world.agents.secrets

        async def main() -> None:
            async with world.hub.serve(listen=("127.0.0.1", 0)) as running:
                at, hub = running.address, running.identifier
                issued = await secrets.lease("payments", holder="support", broker=at, expect=hub)
                assert await secrets.leases(holder="sub", broker=at, expect=hub) == []
                with pytest.raises(troth.SecretError) as refused:
                    await secrets.give_back(
                        issued.lease_id.text(), holder="sub", broker=at, expect=hub
                    )
                assert refused.value.reason is troth.SecretFailure.NO_SUCH_LEASE
                (held,) = await secrets.leases(holder="support", broker=at, expect=hub)
                assert held.state.name == "ACTIVE"

        asyncio.run(main())
