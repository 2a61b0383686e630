"""Review 39b, mcp: adversarial re-review of review 38a, mcp 1 (a server published on a node
hosting none keeps the one authority the node trusted at publication as its grantor).

1. The grantor was fixed only when the node trusted exactly one authority at publication. A
   tool server published before its node's first enrollment (trusting none: nothing to fix)
   was left to the rule worked out at every call: after the node enrolled with acme, acme's
   members were shown its tools; after it then enrolled with globex (trusting two: no own
   authority), acme's members were shown none and denied every call ("no policy bundle") —
   review 38a, mcp 1's effect, for a server published a moment earlier. Now such a server
   keeps the first own authority the node has (its first enrollment's).
2. (fixed by review 40c) A server's default grantor lived as long as the publication, in the
   running node: after a restart the server was published again and its grantor worked out
   again, so a node that had enrolled with globex since re-published it granted by none.
   The grantors are now recorded per server name in the node's store (mcp_grantors), read
   back when the name is published again naming none, and forgotten by `troth mcp forget`.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.mcp_orders import orders_server
from tests.support.nodes import MemNet, globex_over_tcp, run_memnet
from tests.test_mcp_channels import support_bundle
from tests.test_review37a_mcp import enroll_with_globex
from tests.test_review37c_mcp import globex_tools
from tests.test_review38a_mcp import refund_as
from troth.node import open_node
from troth.node.runtime import NodeRuntime
from troth.node.services.mcp import publish_upstream


def test_a_server_published_before_enrollment_keeps_its_first_authority(
    tmp_path: Path,
) -> None:
    """Mcp 1. The tools node publishes `orders` before it enrolls anywhere (it trusts no
    authority: its answer names no grantor), then enrolls with acme: acme's bundle decides
    the tools, and acme's writer refunds. It then enrolls with globex: acme's writer still
    refunds, and globex's member, under globex's permit-all bundle, is shown nothing. Was a
    strict xfail until a server published on a node with no own authority kept the first it
    had (`_first_own`)."""

    async def test(net: MemNet) -> None:
        tools = await net.node("tools", listen=("tools", 4000))
        assert not tools.trust.anchors
        published = await publish_upstream(tools, "orders", orders_server())
        assert published["grantable_by"] == []
        await tools.enroll(net.ticket(), "tools")
        now = net.clock.now()
        assert net.hub is not None
        signer = net.hub.node.identities.signer("hub", now=now)  # acme's bundle
        tools.policies.accept(support_bundle(signer, net.authority.identifier, now), now=now)
        writer = await net.member("writer", **{"orders.access": "write"})
        assert await refund_as(writer, "writer") == (
            ["lookup_order", "refund"],
            "refunded 20 on o1",
        )

        globex_node, globex, ticket = await globex_over_tcp(net)
        await enroll_with_globex(net, tools, globex)
        tools.policies.accept(
            globex_tools(globex_node, globex, net.clock.now()), now=net.clock.now()
        )
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


async def _restarted(net: MemNet, runtime: NodeRuntime) -> NodeRuntime:
    """`runtime`'s node stopped and started again (a new process would do the same)."""
    await runtime.stop()
    node = open_node(runtime.name, home=net.home)
    net.opened.append(node)
    again = NodeRuntime(node, clock=net.clock, transport=net.transport("tools"))
    net.runtimes.append(again)
    await again.start(("tools", 4000))
    return again


def test_a_restarted_nodes_server_keeps_its_authority(tmp_path: Path) -> None:
    """Mcp 2. The tools node, acme's member alone, publishes `orders` naming no authority
    (acme fixed as its grantor), then enrolls with globex: acme's writer still refunds
    (review 38a, mcp 1). The node restarts and `orders` is published again, as it was
    (`troth mcp serve` naming no authority): acme's writer still refunds. Was a strict xfail
    until a server's grantors were recorded by its name in the node's store (`mcp_grantors`,
    review 40c) and read back when the name is published again naming none."""

    async def test(net: MemNet) -> None:
        tools = await net.node("tools", listen=("tools", 4000))
        await tools.enroll(net.ticket(), "tools")
        now = net.clock.now()
        assert net.hub is not None
        signer = net.hub.node.identities.signer("hub", now=now)  # acme's bundle
        acme = support_bundle(signer, net.authority.identifier, now)
        tools.policies.accept(acme, now=now)
        published = await publish_upstream(tools, "orders", orders_server())
        assert published["grantable_by"] == [str(net.authority.identifier)]
        _globex_node, globex, _ticket = await globex_over_tcp(net)
        await enroll_with_globex(net, tools, globex)
        writer = await net.member("writer", **{"orders.access": "write"})
        refunded = (["lookup_order", "refund"], "refunded 20 on o1")
        assert await refund_as(writer, "writer") == refunded

        tools = await _restarted(net, tools)
        again = await publish_upstream(tools, "orders", orders_server())
        assert again["grantable_by"] == [str(net.authority.identifier)]
        assert await refund_as(writer, "writer") == refunded

    run_memnet(test, tmp_path)
