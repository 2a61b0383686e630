"""Review 37d (the lead), MCP: the chain that decides a peer's tools on a published server when
the peer holds chains of two authorities and the server's tools are granted by one of them.

Review 37a made a session's tools decided with a chain the server's `send` admits; review 37c
made the server's decision point see only the bundles of the authorities granting its tools
(`GrantedBundles`). A peer of both acme and globex on a hub hosting acme (its tools granted by
acme only, the default) presenting its globex chain first had that chain picked (the first of
an authority whose bundle the hub holds): denied "no policy bundle", though its acme chain is
one acme's bundle permits. Deny when in doubt holds either way; this is the right answer.
"""

from __future__ import annotations

from pathlib import Path

from mcp import Client

from tests.support.mcp_orders import names, orders_server
from tests.support.nodes import HUB, MemNet, globex_over_tcp, run_memnet
from tests.test_mcp_channels import support_bundle
from tests.test_review36c_services import push_to_hub
from tests.test_review37a_mcp import enroll_with_globex
from tests.test_review37c_mcp import globex_tools
from troth.integrations.mcp.connect import connect
from troth.node.services.mcp import publish_upstream

ORDERS = f"{HUB}/service/mcp.orders"


def test_a_peer_of_two_authorities_is_decided_with_a_chain_of_one_granting_the_tools(
    tmp_path: Path,
) -> None:
    """The dual member's tools on the hub's server (granted by acme, whose bundle permits
    `lookup_order` to readers) are acme's answer, whichever chain it presents first; globex's
    permit-all bundle decides nothing there. Was a strict xfail until `PeerCredential(granted=)`
    put the chains of the authorities granting the server's tools first (without it the test
    fails whenever the peer's globex chain comes first: the order follows the identifiers,
    random per run; it failed in 6 of 8 runs)."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        await publish_upstream(hub, "orders", orders_server())
        globex_node, globex, ticket = await globex_over_tcp(net)
        await hub.enroll(ticket, "hub")
        await push_to_hub(globex_node, globex_tools(globex_node, globex, net.clock.now()))
        now = net.clock.now()
        signer = hub.node.identities.signer("hub", now=now)
        hub.policies.accept(support_bundle(signer, net.authority.identifier, now), now=now)
        dual = await net.member("dual", **{"orders.access": "read"})
        await enroll_with_globex(net, dual, globex)
        async with (
            connect(dual, "dual", ORDERS) as transport,
            Client(transport, mode="legacy", cache=None) as agent,
        ):
            assert await names(agent) == ["lookup_order"]

    run_memnet(test, tmp_path)
