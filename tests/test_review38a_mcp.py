"""Review 38a, mcp: whose bundles decide a published server's tools on a node hosting no
authority, once it enrolls with a second one.

docs/policy.md ("MCP over secure channels") gives a published server's tools, by default, to
the node's own authority (`NodeTrust.own_authorities`: on a node hosting none, the one it
trusts when it trusts exactly one) and says "the same rule holds for the host's leased
secrets" — where that authority is recorded when the secret is stored, "so the node's later
enrollments grant it nothing" (docs/secrets.md, "Whose bundles grant a secret")."""

from __future__ import annotations

from pathlib import Path

from mcp import Client

from tests.support.mcp_orders import names, orders_server, text
from tests.support.nodes import MemNet, globex_over_tcp, run_memnet
from tests.test_mcp_channels import support_bundle
from tests.test_review37a_mcp import enroll_with_globex
from tests.test_review37c_mcp import globex_tools
from troth.integrations.mcp.connect import connect
from troth.node.runtime import NodeRuntime
from troth.node.services.mcp import publish_upstream

TOOLS = "/tcp/tools:4000/service/mcp.orders"


async def refund_as(member: NodeRuntime, name: str) -> tuple[list[str], str]:
    """The tools `name` is shown on the tools node's orders server, and its refund's answer."""
    async with (
        connect(member, name, TOOLS) as transport,
        Client(transport, mode="legacy", cache=None) as agent,
    ):
        shown = await names(agent)
        refund = await agent.call_tool("refund", {"order_id": "o1", "amount": 20})
        return shown, text(refund)


def test_a_later_enrollment_takes_no_servers_tools_from_its_authority(tmp_path: Path) -> None:
    """Mcp 1. A tool server's node hosts no authority and is acme's member (it trusts acme
    alone); it publishes `orders` naming no authority, so acme's bundle decides its tools:
    acme's writer refunds. The node then enrolls with globex (to use globex's services; it
    trusts both now). The default was worked out at every decision: trusting two, the node had
    no own authority, and acme's writer was shown no tool and denied every call ("no policy
    bundle"), its server granted to nobody by one enrollment, where a secret stored the same
    way keeps acme (recorded at put). Published on a node hosting none, the one authority it
    trusts is now fixed for the server, as `put_secret` records it: acme's writer still
    refunds, and globex's member, under globex's permit-all bundle, is shown nothing. Was a
    strict xfail until `publish_upstream` fixed, on a node hosting none, the one authority it
    trusts as the server's grantor (and answers the grantors: `grantable_by`)."""

    async def test(net: MemNet) -> None:
        tools = await net.node("tools", listen=("tools", 4000))
        await tools.enroll(net.ticket(), "tools")
        now = net.clock.now()
        assert net.hub is not None
        signer = net.hub.node.identities.signer("hub", now=now)  # acme's bundle
        tools.policies.accept(support_bundle(signer, net.authority.identifier, now), now=now)
        published = await publish_upstream(tools, "orders", orders_server())
        assert "refund" in published["tools"]
        assert published["grantable_by"] == [str(net.authority.identifier)]
        writer = await net.member("writer", **{"orders.access": "write"})
        assert await refund_as(writer, "writer") == (
            ["lookup_order", "refund"],
            "refunded 20 on o1",
        )

        globex_node, globex, ticket = await globex_over_tcp(net)
        await enroll_with_globex(net, tools, globex)
        assert globex.identifier in tools.trust.anchors
        data = globex_tools(globex_node, globex, net.clock.now())
        tools.policies.accept(data, now=net.clock.now())
        assert await refund_as(writer, "writer") == (
            ["lookup_order", "refund"],
            "refunded 20 on o1",
        )
        mallory = await net.node("mallory")
        await mallory.enroll(ticket, "mallory")
        shown, answer = await refund_as(mallory, "mallory")
        assert shown == []
        assert answer.endswith("denied: no policy bundle")

    run_memnet(test, tmp_path)
