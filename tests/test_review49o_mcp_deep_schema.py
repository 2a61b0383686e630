"""Review 49o, mcp 1: an upstream MCP server (hostile or broken) listing a tool whose input
schema is nested past Python's recursion limit made the gate's tools/list fail with an
uncaught RecursionError (`schema_shape` walks and canonicalises the schema recursively), so
one bad tool took the whole listing, and every call judged with it, down. Such a schema is now
refused before it is walked (PolicyError, over limits.MAX_UPSTREAM_SCHEMA_DEPTH) and the tool
hidden and logged; the upstream's other tools are still listed and callable."""

from __future__ import annotations

import logging
import sys
from typing import Any

import anyio
import mcp_types as types
import pytest

from tests.support.gates import T, export_customers, lookup_order, make_world, refund
from troth import limits
from troth.clock import FixedClock
from troth.errors import PolicyError
from troth.gates import schema_from_function
from troth.gates.toolschema import compile_tool_schema, schema_shape
from troth.integrations.mcp.gate import McpGate


def _deep(levels: int, key: str = "items") -> dict[str, Any]:
    """An array schema nested `levels` deep (built without recursion)."""
    node: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        node = {"type": "array", key: node}
    return {"type": "object", "properties": {"x": node}}


class Deep:
    """An `Upstream` serving the support-desk tools and one (`name`) whose schema is nested
    far past the recursion limit."""

    def __init__(self, name: str, key: str) -> None:
        self.name = name
        self.key = key
        self.ran: list[str] = []

    async def list_tools(self, *, cursor: str | None = None) -> types.ListToolsResult:
        tools = [
            types.Tool(name=f.__name__, input_schema=schema_from_function(f))
            for f in (lookup_order, refund, export_customers)
            if f.__name__ != self.name
        ]
        deep = _deep(sys.getrecursionlimit() * 2, self.key)
        tools.append(types.Tool(name=self.name, input_schema=deep))
        return types.ListToolsResult(tools=tools)

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult:
        self.ran.append(name)
        return types.CallToolResult(content=[types.TextContent(type="text", text="ran")])


@pytest.mark.parametrize("name", ["deep_tool", "refund"])
@pytest.mark.parametrize("key", ["items", "examples"])  # a schema, or an annotation's value
def test_a_tool_nested_past_the_recursion_limit_is_hidden_the_others_listed(
    name: str, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    world = make_world()
    upstream = Deep(name, key)
    gate = McpGate(world.point(world.store(world.bundle())), upstream, clock=FixedClock(T + 10))
    caller = world.credential(world.support_chain, world.support)
    listed: list[str] = []
    said: list[bool | None] = []

    async def main() -> None:
        listed.extend(t.name for t in (await gate.list_tools(caller)).tools)
        said.append((await gate.call_tool(caller, "lookup_order", {"order_id": "o1"})).is_error)
        said.append((await gate.call_tool(caller, name, {"x": []})).is_error)

    with caplog.at_level(logging.WARNING, logger="troth.mcp"):
        anyio.run(main)
    assert name not in listed
    assert "lookup_order" in listed
    assert said == [False, True]  # the others callable; the deep one denied, never run
    assert upstream.ran == ["lookup_order"]
    assert any(name in r.getMessage() and "nested" in r.getMessage() for r in caplog.records)


def test_schema_shape_and_compile_refuse_a_schema_over_the_depth_limit() -> None:
    deep = _deep(limits.MAX_UPSTREAM_SCHEMA_DEPTH - 2)  # its JSON nests 3 levels more
    with pytest.raises(PolicyError, match="nested deeper"):
        schema_shape(deep)
    with pytest.raises(PolicyError, match="tool t: schema nested deeper"):
        compile_tool_schema("t", deep)
    schema_shape(_deep(limits.MAX_UPSTREAM_SCHEMA_DEPTH - 3))  # at the limit: read
