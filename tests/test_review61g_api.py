"""Review 61g: `Node.policies` and `Node.secrets` (the public API's gates and broker) against
what their callers rely on."""

from __future__ import annotations

import asyncio

import pytest

import troth
from tests.support.brokers import PAYMENTS
from tests.support.public_api import acme_and_agents

GRANTS = """\
@id("refunds") permit(principal, action == Action::"lease", resource == Secret::"payments")
  when { principal.hasTag("orders.access") && ["{scope}"].containsAll(context.scope) };
"""


def test_a_bundle_installed_while_the_node_serves_here_decides_at_once() -> None:
    """Review 61g, api 3: a bundle installed through `Node.policies` on a node this process
    serves decided nothing until the runtime's next maintenance round. The hub serves its
    broker under revision 1 (refunds only); revision 2 (charges only), installed inside the
    block, decides the next lease."""
    with acme_and_agents() as world:
        world.hub.secrets.put("payments", engine="token", config=PAYMENTS)
        world.hub.policies.publish(
            policies=GRANTS.replace("{scope}", "refunds"), tools={}, revision=1
        )

        async def main() -> None:
            async with world.hub.serve(listen=("127.0.0.1", 0)) as running:
                at, hub = running.address, running.identifier
                lease = world.agents.secrets.lease
                await lease("payments", holder="support", broker=at, expect=hub, scope=["refunds"])
                world.hub.policies.publish(
                    policies=GRANTS.replace("{scope}", "charges"), tools={}, revision=2
                )
                issued = await lease(
                    "payments", holder="support", broker=at, expect=hub, scope=["charges"]
                )
                assert issued.lease.scope == ("charges",)
                with pytest.raises(troth.SecretError):  # revision 1's grant is gone
                    await lease(
                        "payments", holder="support", broker=at, expect=hub, scope=["refunds"]
                    )

        asyncio.run(main())
