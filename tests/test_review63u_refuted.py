"""Review 63u: attacks on a revocation made on the authority's own node that did not work.

1. `Node.policies.decide` on the hosting node while it serves (its runtime's poll of its store
   not due): a credential revoked a moment before is denied at once, as decide reads the
   hosted authority's feed from its store, not the runtime's copy in memory.
"""

from __future__ import annotations

import asyncio

import pytest

import troth
import troth.node.upkeep

REFUNDS = """\
@id("refunds") permit(principal, action == Action::"invoke:refund", resource)
  when { principal.hasTag("orders.access") };
"""


def refund(order_id: str) -> str:
    """Refund order `order_id`."""
    return order_id


def test_policies_decide_on_the_hosting_node_denies_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(troth.node.upkeep, "HOSTED_FEED_POLL", 3600.0)
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        member = agents.enroll(acme.ticket({"orders.access": "read"}))
        hub.policies.publish(policies=REFUNDS, tools={"refund": refund}, revision=1)

        async def main() -> None:
            async with hub.serve():
                assert hub.policies.decide(member, "refund", {"order_id": "o1"}).allowed
                acme.revoke(member, reason="left")
                denied = hub.policies.decide(member, "refund", {"order_id": "o1"})
                assert not denied.allowed
                assert "revoked" in denied.reason

        asyncio.run(main())
