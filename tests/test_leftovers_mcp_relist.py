"""The MCP gate judges a call against its last tools/list; on a tool name that listing does not
know, it listed the upstream again (up to MAX_TOOL_PAGES pages) for every such call. A caller
sending calls of made-up tool names made the gate list the upstream once per call (64 pages
each at most): the upstream's work was the caller's to multiply.

The tests count the upstream's list requests (pages) under the real MCP client and server of
the gate tests. The gate now lists again at most once per MCP_RELIST_SECONDS (for every caller
together, one listing at a time); within it, a name the last listing does not know is judged
as unknown (denied by default). Both tests were strict xfails until then.
"""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
from mcp import Client

from tests.support.gates import T, make_world
from tests.support.mcp_orders import orders_server, text
from troth import limits
from troth.clock import FixedClock
from troth.gates import ListRecorder
from troth.integrations.mcp.gate import DENIED_PREFIX, McpGate, gate_server

MADE_UP = 40


class Counting:
    """An `Upstream` passing every request to `client`, counting its tools/list pages."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.pages = 0

    async def list_tools(self, *, cursor: str | None = None) -> types.ListToolsResult:
        self.pages += 1
        return await self.client.list_tools(cursor=cursor)

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult:
        return await self.client.call_tool(name, arguments)


def test_calls_of_made_up_tools_do_not_list_the_upstream_again() -> None:
    """40 calls of made-up names after one tools/list, then 40 at once after the interval:
    each denied as unknown; the upstream listed once more in all (not 80 times); a listed
    tool still runs."""

    async def main() -> None:
        world = make_world()
        support = world.credential(world.support_chain, world.support)
        recorder = ListRecorder()
        clock = FixedClock(T + 10)
        point = world.point(world.store(world.bundle()), recorder)
        async with Client(orders_server(), cache=None) as client:
            upstream = Counting(client)
            gate = McpGate(point, upstream, clock=clock)
            async with Client(gate_server(gate, support), mode="legacy", cache=None) as agent:
                await agent.list_tools()
                assert upstream.pages == 1
                for j in range(MADE_UP):
                    made_up = await agent.call_tool(f"made_up_{j}", {})
                    assert text(made_up) == (
                        DENIED_PREFIX + "denied: the policy bundle declares no such tool"
                    )
                assert upstream.pages == 1
                clock.advance(limits.MCP_RELIST_SECONDS)
                async with anyio.create_task_group() as calls:
                    for j in range(MADE_UP):
                        calls.start_soon(agent.call_tool, f"later_{j}", {})
                assert upstream.pages == 2  # one listing for all of them
                allowed = await agent.call_tool("refund", {"order_id": "o1", "amount": 20})
                assert (allowed.is_error, text(allowed)) == (False, "refunded 20 on o1")
                assert upstream.pages == 2
        assert len(recorder.records) == 2 * MADE_UP + 1  # every call decided and recorded
        assert [r.decision.allowed for r in recorder.records].count(True) == 1

    anyio.run(main)


def test_a_call_before_any_listing_lists_the_upstream_once() -> None:
    """A call of a listed tool before any listing (the gate called directly: an MCP client
    lists the tools itself after a result it has no schema for): the gate lists the upstream
    (one page) and the call runs; a made-up name next is denied without another listing."""

    async def main() -> None:
        world = make_world()
        support = world.credential(world.support_chain, world.support)
        point = world.point(world.store(world.bundle()))
        async with Client(orders_server(), cache=None) as client:
            upstream = Counting(client)
            gate = McpGate(point, upstream, clock=FixedClock(T + 10))
            looked = await gate.call_tool(support, "lookup_order", {"order_id": "o7"})
            assert (looked.is_error, text(looked)) == (False, "order o7: 2 items, paid")
            assert upstream.pages == 1
            assert (await gate.call_tool(support, "made_up", {})).is_error
            assert upstream.pages == 1

    anyio.run(main)
