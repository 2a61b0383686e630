"""Review 37a, MCP: a published MCP server on a hub trusting two authorities, and a peer holding
chains of both (re-review of 36c, services 1).

1. The hub hosts acme and holds no bundle of acme's; it enrolled with globex. globex's bundle
   declares the hub's `mcp.orders` (`["send"]`), forbids its chains `send` there and permits
   every tool. A peer holding an acme chain and a globex chain is admitted to `send` by the
   built-in rule on its acme chain (no bundle governs `mcp.orders` for acme's chains), and the
   MCP gate then decided every tools/call with its globex chain (the first chain of an
   authority whose bundle the hub holds): globex's permits ran tools for a chain globex's own
   bundle keeps out of the server — Cedar's answer for one chain, the admission met by another.
"""

from __future__ import annotations

from pathlib import Path

from mcp import Client

from tests.support.mcp_orders import names, orders_server, text
from tests.support.nodes import HUB, MemNet, globex_over_tcp, run_memnet
from tests.test_mcp_channels import support_bundle
from tests.test_review36c_services import globex_bundle, push_to_hub
from troth.authority import Authority
from troth.credentials import Attributes
from troth.errors import PolicyFailure
from troth.integrations.mcp.connect import connect
from troth.integrations.mcp.gate import DENIED_PREFIX
from troth.node.runtime import NodeRuntime
from troth.node.services.mcp import publish_upstream

ORDERS = f"{HUB}/service/mcp.orders"
NO_MCP = """\
@id("all") permit(principal, action, resource);
@id("no-mcp") forbid(principal, action == Action::"send", resource == Service::"mcp.orders");
"""


async def enroll_with_globex(net: MemNet, runtime: NodeRuntime, globex: Authority) -> None:
    ticket = globex.create_ticket(
        creator=globex.identifier,
        attributes=Attributes({"globex.team": "desk"}),
        address="/tcp/globex:4000",
        now=net.clock.now(),
    )
    await runtime.enroll(str(ticket), runtime.name)


def test_tools_are_decided_by_a_chain_admitted_to_the_server(tmp_path: Path) -> None:
    """MCP 1 (module docstring). globex's own member is refused `send`; the peer of both is
    admitted by its acme chain, and its tools/list and tools/call are decided with that chain
    only (acme holds no bundle on the hub: nothing is listed, a call is denied `no policy
    bundle`; once acme's bundle is there, acme's permits: lookup_order only), never with its
    globex chain, which globex's bundle keeps out of the server. Was
    a strict xfail until the MCP service's sessions took the node's decision point
    (`McpService(access=)`) and `PeerCredential(admits=)` picked among the chains
    `GatedPolicy.admits` admits to `send` only."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        await publish_upstream(hub, "orders", orders_server())
        globex_node, globex, ticket = await globex_over_tcp(net)
        await hub.enroll(ticket, "hub")  # the hub trusts globex from now on
        now = net.clock.now()
        no_mcp = {"mcp.orders": ["send"]}
        await push_to_hub(
            globex_node, globex_bundle(globex_node, globex, now, policies=NO_MCP, services=no_mcp)
        )
        dual = await net.member("dual", **{"orders.access": "read"})
        await enroll_with_globex(net, dual, globex)
        held = {h.authority for h in dual.node.wallet.held("dual")}
        assert held == {net.authority.identifier.digest, globex.identifier.digest}
        async with (
            connect(dual, "dual", ORDERS) as transport,
            Client(transport, mode="legacy", cache=None) as agent,
        ):
            assert await names(agent) == []
            refund = await agent.call_tool("refund", {"order_id": "o1", "amount": 20})
            assert refund.is_error
            assert text(refund) == DENIED_PREFIX + f"denied: {PolicyFailure.NO_BUNDLE.value}"
        # acme's bundle on the hub (declaring no service): acme's permits decide, by its chain
        now = net.clock.now()
        signer = hub.node.identities.signer("hub", now=now)
        hub.policies.accept(support_bundle(signer, net.authority.identifier, now), now=now)
        async with (
            connect(dual, "dual", ORDERS) as transport,
            Client(transport, mode="legacy", cache=None) as agent,
        ):
            assert await names(agent) == ["lookup_order"]
            refund = await agent.call_tool("refund", {"order_id": "o1", "amount": 20})
            # refund is hidden from it: told as undeclared (review 47h, gates 1)
            assert text(refund) == DENIED_PREFIX + "denied: the policy bundle declares no such tool"

    run_memnet(test, tmp_path)
