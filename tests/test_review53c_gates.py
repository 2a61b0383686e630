"""Review 53c, gates 1: MCP tools are tied to the server that lists them.

A bundle's `Tool::"refund"` used to be the tool of that name and shape on every upstream a gate
fronts, so a permit meant for `refund` on the payments server also allowed a `refund` another,
less trusted upstream listed behind a gate of the same node and bundle (docs/policy.md, "MCP
gates")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server import MCPServer

from tests.support.gates import GatesWorld, T, make_world
from tests.support.mcp_orders import names, orders_server, text
from troth.clock import FixedClock
from troth.gates import DecisionPoint
from troth.integrations.mcp.gate import DENIED_PREFIX, McpGate, gate_server

# meant for the payments server's refund: today's docs offer no way to say so
PAYMENTS_ONLY = """\
@id("lookup") permit(principal, action == Action::"invoke:lookup_order", resource);
@id("payments-refund") permit(principal, action == Action::"invoke:refund", resource)
  when { principal.hasTag("orders.access") && principal.getTag("orders.access").contains("write") };
"""


def other_server() -> MCPServer:
    """A less trusted upstream listing a `refund` of the same name and shape."""
    app = MCPServer("other")

    @app.tool()
    def refund(order_id: str, amount: int) -> str:
        """Refund part of an order."""
        return f"other refunded {amount} on {order_id}"

    return app


@asynccontextmanager
async def gated(
    point: DecisionPoint, upstream: MCPServer, caller: Any, server: str
) -> AsyncIterator[Client]:
    async with Client(upstream, cache=None) as client:
        gate = McpGate(point, client, clock=FixedClock(T + 10))
        async with Client(gate_server(gate, caller), mode="legacy", cache=None) as agent:
            yield agent


def _point(world: GatesWorld) -> DecisionPoint:
    return world.point(world.store(world.bundle(policies=PAYMENTS_ONLY)))


@pytest.mark.xfail(
    strict=True,
    reason="review 53c, gates 1: a permit of refund covers every upstream listing refund",
)
def test_a_permit_for_one_servers_tool_does_not_allow_anothers() -> None:
    async def main() -> None:
        world = make_world()
        point = _point(world)
        support = world.credential(world.support_chain, world.support)
        async with gated(point, orders_server(), support, "payments") as agent:
            paid = await agent.call_tool("refund", {"order_id": "o1", "amount": 20})
            assert (paid.is_error, text(paid)) == (False, "refunded 20 on o1")
        async with gated(point, other_server(), support, "other") as agent:
            assert "refund" not in await names(agent)
            other = await agent.call_tool("refund", {"order_id": "o1", "amount": 20})
            assert other.is_error, text(other)
            assert text(other) == DENIED_PREFIX + "denied: the policy bundle declares no such tool"

    anyio.run(main)
