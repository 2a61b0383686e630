"""An upstream MCP server for the gate tests (the support desk's tools), in process
(`orders_server()`) or over stdio (`python tests/support/mcp_orders.py`). Each tool's input
schema is what the MCP SDK derives from its signature: the policy bundle of tests/support/gates
declares the same shapes (troth.gates.schema_shape ignores the SDK's titles)."""

from __future__ import annotations

from typing import Literal

import mcp_types as types
from mcp import Client
from mcp.server import MCPServer


def orders_server() -> MCPServer:
    """The orders MCP server: lookup_order, refund, export_customers."""
    app = MCPServer("orders")

    @app.tool()
    def lookup_order(order_id: str) -> str:
        """Look up an order."""
        return f"order {order_id}: 2 items, paid"

    @app.tool()
    def refund(order_id: str, amount: int) -> str:
        """Refund part of an order."""
        return f"refunded {amount} on {order_id}"

    @app.tool()
    def export_customers(fmt: Literal["csv", "json"] = "csv") -> str:
        """Export every customer."""
        return f"customers.{fmt}"

    return app


def text(result: types.CallToolResult) -> str:
    """The text of a tool result's first content block."""
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def names(agent: Client) -> list[str]:
    """The names of the tools `agent`'s server lists."""
    return [tool.name for tool in (await agent.list_tools()).tools]


if __name__ == "__main__":
    orders_server().run()  # stdio
