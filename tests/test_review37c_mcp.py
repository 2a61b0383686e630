"""Review 37c, mcp: whose policy bundles decide the tools of an MCP server a node publishes.

A published server's tools/list and tools/call are decided by the gates' decision point: the
bundle in force for the *caller's* authority (docs/policy.md, "MCP over secure channels"). A node
trusts every authority it enrolls with, so a hub hosting acme that enrolled with globex let
globex's bundle decide globex's members' calls of the hub's own tools.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from tests.support.mcp_orders import names, orders_server, text
from tests.support.nodes import HUB, MemNet, globex_over_tcp, run_memnet
from tests.test_mcp_channels import install
from tests.test_review36c_services import globex_bundle, globex_member, push_to_hub
from troth.authority import Authority
from troth.errors import DecodeError
from troth.integrations.mcp.connect import connect
from troth.integrations.mcp.gate import DENIED_PREFIX
from troth.node.control import OPERATIONS
from troth.node.runtime import NodeRuntime
from troth.node.services.mcp import publish_upstream

ORDERS = f"{HUB}/service/mcp.orders"
INVOKE_ANYTHING = '@id("all") permit(principal, action, resource);\n'


def globex_tools(node: NodeRuntime, globex: Authority, now: int) -> bytes:
    """globex's bundle (signed by globex) declaring the orders tools and permitting every call."""
    return globex_bundle(node, globex, now, policies=INVOKE_ANYTHING, services={})


async def globex_on_hub(net: MemNet) -> Authority:
    """globex, trusted by the hub, its permit-all bundle in force there."""
    assert net.hub is not None
    globex_node, globex, ticket = await globex_over_tcp(net)
    await net.hub.enroll(ticket, "hub")  # the hub trusts globex from now on
    await push_to_hub(globex_node, globex_tools(globex_node, globex, net.clock.now()))
    assert net.hub.policies.held(globex.identifier) is not None
    return globex


async def refund_as(member: NodeRuntime, name: str) -> tuple[list[str], str]:
    """The tools `name` is shown on the hub's orders server, and its refund call's answer."""
    async with (
        connect(member, name, ORDERS) as transport,
        Client(transport, mode="legacy", cache=None) as agent,
    ):
        shown = await names(agent)
        refund = await agent.call_tool("refund", {"order_id": "o1", "amount": 20})
        return shown, text(refund)


def test_a_co_trusted_authoritys_bundle_grants_none_of_the_hosts_tools(tmp_path: Path) -> None:
    """Mcp 1. The hub hosts acme and publishes `orders` (acme's support bundle decides it). It
    enrolls with globex, whose bundle declares the same tools and permits every call. A globex
    member connected to the hub's server was shown every tool and refunded an order, under
    globex's bundle, with nothing the hub's operator could set to prevent it. Now it is shown
    none and its call is denied as where its authority has no bundle; acme's writer, the
    control, still refunds. Was a strict xfail until a published server's decision point saw
    only the bundles of the authorities granting its tools (`GrantedBundles`; default: the
    node's own, `NodeTrust.own_authorities`)."""

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        install(net)
        await publish_upstream(net.hub, "orders", orders_server())
        globex = await globex_on_hub(net)
        mallory = await globex_member(net, globex, "mallory")
        shown, answer = await refund_as(mallory, "mallory")
        assert shown == []
        assert answer == DENIED_PREFIX + "denied: no policy bundle"
        writer = await net.member("writer", **{"orders.access": "write"})
        assert await refund_as(writer, "writer") == (
            ["lookup_order", "refund"],
            "refunded 20 on o1",
        )

    run_memnet(test, tmp_path)


def test_the_operator_names_the_authorities_that_grant_a_servers_tools(tmp_path: Path) -> None:
    """Published grantable by acme and globex, the server's tools are decided for globex's
    member by globex's bundle (it refunds), and for acme's by acme's."""

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        install(net)
        globex = await globex_on_hub(net)
        both = (net.authority.identifier, globex.identifier)
        await publish_upstream(net.hub, "orders", orders_server(), grantable_by=both)
        mallory = await globex_member(net, globex, "mallory")
        shown, answer = await refund_as(mallory, "mallory")
        assert "refund" in shown
        assert answer == "refunded 20 on o1"
        writer = await net.member("writer", **{"orders.access": "write"})
        assert (await refund_as(writer, "writer"))[1] == "refunded 20 on o1"

    run_memnet(test, tmp_path)


def test_mcp_serve_refuses_a_malformed_authority_before_spawning(tmp_path: Path) -> None:
    """The control operation `mcp.serve` takes `grantable_by` as identifiers, space-separated:
    anything else is refused (DecodeError naming it) and nothing is published."""

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        operation = OPERATIONS["mcp.serve"]
        args = operation.parse({"name": "orders", "upstream": "true", "grantable_by": "acme"})
        with pytest.raises(DecodeError) as refused:
            await operation.handler(net.hub, args)
        assert "grantable_by" in str(refused.value)
        assert "mcp.orders" not in net.hub.host.services

    run_memnet(test, tmp_path)
