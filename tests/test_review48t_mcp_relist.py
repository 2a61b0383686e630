"""Review 48t, gates 1, the MCP gate: a call of a name the gate's last listing does not know
lists the upstream again (at most once per MCP_RELIST_SECONDS for all callers), so a made-up
name could cost an upstream listing where a tool the upstream lists but the caller is not shown
never did: a careful timer, calling a name once the window had passed, could tell which names
the upstream serves. Both must cost the same listings; counted, not timed."""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
import pytest

from tests.support.gates import GatesWorld, T, export_customers, lookup_order, make_world, refund
from troth import limits
from troth.clock import FixedClock
from troth.gates import schema_from_function
from troth.integrations.mcp.gate import DENIED_PREFIX, McpGate

UNDECLARED = DENIED_PREFIX + "denied: the policy bundle declares no such tool"


class Listing:
    """An `Upstream` serving the three support-desk tools, counting its listings."""

    def __init__(self) -> None:
        self.listings = 0

    async def list_tools(self, *, cursor: str | None = None) -> types.ListToolsResult:
        self.listings += 1
        tools = [
            types.Tool(name=f.__name__, input_schema=schema_from_function(f))
            for f in (lookup_order, refund, export_customers)
        ]
        return types.ListToolsResult(tools=tools)

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult:
        return types.CallToolResult(content=[types.TextContent(type="text", text="ran")])


@pytest.fixture(scope="module")
def world() -> GatesWorld:
    return make_world()


def _listings(world: GatesWorld, tool: str, arguments: dict[str, Any]) -> list[int]:
    """The upstream listings each of three calls of `tool` by `sub` costs, the gate's clock
    past MCP_RELIST_SECONDS before each (the first after a tools/list)."""
    upstream = Listing()
    clock = FixedClock(T + 10)
    gate = McpGate(world.point(world.store(world.bundle())), upstream, clock=clock)
    caller = world.credential(world.sub_chain, world.sub)
    seen: list[int] = []

    async def main() -> None:
        await gate.list_tools(caller)
        for _ in range(3):
            clock.advance(limits.MCP_RELIST_SECONDS)
            before = upstream.listings
            result = await gate.call_tool(caller, tool, arguments)
            assert result.is_error
            assert result.content[0].text == UNDECLARED  # type: ignore[union-attr]
            seen.append(upstream.listings - before)

    anyio.run(main)
    return seen


def test_a_hidden_upstream_tool_costs_the_listings_a_made_up_name_does(
    world: GatesWorld,
) -> None:
    arguments = {"order_id": "o1", "amount": 1}
    made_up = _listings(world, "not_a_tool", arguments)
    assert made_up == [1, 1, 1]  # the window passed before each call
    assert _listings(world, "refund", arguments) == made_up  # refund: hidden from sub
