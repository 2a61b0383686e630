"""Review 63p, MCP: attacks on the gate's paged tools/list that did not work.

- An upstream's own cursors (it pages its listing) never reach the gate's client, nor does the
  gate take one back: the gate reads every upstream page itself and gives its own cursors only.
- A cursor replayed (the same page asked again and again) serves the same page, the last one,
  never another listing's nor one past its end.
"""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from tests.support.gates import T, lookup_order, make_world
from tests.test_review63p_mcp import _ALL, _NAMES, _gate, _in_session, _refused, _tools
from troth.clock import FixedClock
from troth.gates import schema_from_function
from troth.integrations.mcp.gate import McpGate, gate_server


class _PagedUpstream:
    """An upstream listing its tools in two pages, with its own cursor."""

    CURSOR = "upstream-page-2"

    async def list_tools(self, *, cursor: str | None = None) -> types.ListToolsResult:
        schema = schema_from_function(lookup_order)
        names = ["lookup_order"] if cursor is None else ["refund"]
        tools = [types.Tool(name=name, input_schema=schema) for name in names]
        return types.ListToolsResult(
            tools=tools, next_cursor=self.CURSOR if cursor is None else None
        )

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult:
        return types.CallToolResult(content=[])


def test_an_upstreams_cursor_neither_reaches_the_client_nor_is_taken_back() -> None:
    world = make_world()
    tools = {"lookup_order": schema_from_function(lookup_order)}
    tools["refund"] = tools["lookup_order"]
    point = world.point(world.store(world.bundle(tools=tools, policies=_ALL)))
    support = world.credential(world.support_chain, world.support)
    listed: list[types.ListToolsResult] = []

    async def main() -> None:
        gate = McpGate(point, _PagedUpstream(), clock=FixedClock(T + 10))
        async with Client(gate_server(gate, support), cache=None) as agent:
            listed.append(await agent.list_tools())
            with pytest.raises(MCPError) as exc:
                await agent.list_tools(cursor=_PagedUpstream.CURSOR)
            _refused(exc)

    anyio.run(main)
    assert [tool.name for tool in listed[0].tools] == ["lookup_order", "refund"]  # both pages
    assert listed[0].next_cursor is None


def test_a_replayed_cursor_serves_the_same_page() -> None:
    world = make_world()
    point = world.point(world.store(world.bundle(tools=_tools(), policies=_ALL)))
    support = world.credential(world.support_chain, world.support)

    async def test() -> None:
        async with (
            _gate(point) as (gate, _),
            Client(gate_server(gate, support), cache=None) as agent,
        ):
            cursor = (await agent.list_tools()).next_cursor
            assert cursor is not None
            pages = [await agent.list_tools(cursor=cursor) for _ in range(20)]
            assert all(page == pages[0] for page in pages)
            assert pages[0].tools[-1].name == _NAMES[-1]

    _in_session(test)
