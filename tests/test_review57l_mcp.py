"""Review 57l, mcp: a hostile upstream MCP server and a hostile client against the MCP gate.

mcp 1: a published server's tools (`McpService.tools`: its `status`, `troth node status --json`,
and `troth mcp publish`'s answer) were the upstream's first page of tools/list read by the MCP
SDK's client, not the gate's bounded listing (troth.integrations.mcp.listing): any number of
tools within a 64 MiB line (past MAX_UPSTREAM_TOOLS, whose listing the gate refuses; a node's
status answer over MAX_CONTROL_ANSWER failed `troth node status` for the whole node), with
names the gate never offers (a newline, an escape sequence, one listed twice), all kept for
the life of the publication.

Real MCP clients and servers (the SDK's), in process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp.server import Server, ServerRequestContext

from tests.support.gates import TOOLS
from tests.support.nodes import MemNet, run_memnet
from troth import limits
from troth.errors import TrothError
from troth.node.services.mcp import publish_upstream


def listing(tools: list[types.Tool]) -> Server[Any]:
    """An upstream listing `tools` in one page."""

    async def on_list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    return Server("hostile", on_list_tools=on_list_tools)


def _tool(name: str) -> types.Tool:
    return types.Tool(name=name, input_schema=TOOLS["lookup_order"])


def test_a_published_servers_tools_are_the_gates_offer(tmp_path: Path) -> None:
    """Names no bundle could declare, and one listed twice, are not the server's tools."""
    odd = ["evil\n\x1b[2Jforged: line", "é", "x" * (limits.MAX_TOOL_NAME + 1), "twice", "twice"]

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        tools = [_tool(name) for name in [*odd, "lookup_order"]]
        published = await publish_upstream(net.hub, "orders", listing(tools))
        assert published["tools"] == ["lookup_order"]
        status = net.hub.status()["services"]["mcp.orders"]
        assert status["tools"] == ["lookup_order"]

    run_memnet(test, tmp_path)


def test_a_listing_the_gate_refuses_is_not_published(tmp_path: Path) -> None:
    """An upstream listing more tools than the gate reads is refused at publication, as the
    gate refuses its listing: no node status holding its names."""
    tools = [_tool(f"t{i}") for i in range(limits.MAX_UPSTREAM_TOOLS + 1)]

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        with pytest.raises(TrothError, match=r"mcp\.orders: the upstream.s tools are refused"):
            await publish_upstream(net.hub, "orders", listing(tools))
        assert "mcp.orders" not in net.hub.status()["services"]

    run_memnet(test, tmp_path)
