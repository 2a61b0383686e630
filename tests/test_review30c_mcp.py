"""Review 30c, the MCP gate (`troth.integrations.mcp.gate.McpGate`) against the agent.

1. Every call of a name the last listing does not know, within MCP_RELIST_SECONDS of it, is
   judged against that listing (denied as undeclared) and the listing cached what fills the
   name's defaults: nothing, under the name. Each made-up name stayed in the cache until the
   next listing, so an agent calling made-up names of a megabyte each (a local gate reads
   stdin without a bound; a published one, a member's MCP budget) held that much of the
   gate's memory per call.
"""

from __future__ import annotations

import gc
import tracemalloc

import anyio
from mcp import Client

from tests.support.gates import T, make_world
from tests.support.mcp_orders import orders_server, text
from troth.clock import FixedClock
from troth.integrations.mcp.gate import McpGate

_CALLS = 16
_NAME_BYTES = 256 * 1024


def test_calls_of_made_up_names_do_not_hold_memory() -> None:
    """Mcp 1: 16 calls of made-up names of 256 KiB each, within a listing's interval, are
    denied and leave the gate holding well under one of them (was a strict xfail until the
    listing cached the fillers of listed names only)."""

    async def main() -> None:
        world = make_world()
        support = world.credential(world.support_chain, world.support)
        point = world.point(world.store(world.bundle()))
        async with Client(orders_server(), cache=None) as client:
            gate = McpGate(point, client, clock=FixedClock(T + 300))
            looked = await gate.call_tool(support, "lookup_order", {"order_id": "o7"})
            assert (looked.is_error, text(looked)) == (False, "order o7: 2 items, paid")
            gc.collect()
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                for i in range(_CALLS):
                    name = f"{i:04d}" + "x" * _NAME_BYTES
                    denied = await gate.call_tool(support, name, {})
                    assert denied.is_error
                    assert "declares no such tool" in text(denied)
                    del name
                gc.collect()
                held = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
            assert held < _NAME_BYTES, f"the gate holds {held} bytes after the calls"

    anyio.run(main)
