"""Review 26c, the MCP gate's re-list bound (leftovers 1, limits.MCP_RELIST_SECONDS): a call of
a tool name the gate's last listing does not know lists the upstream again only when
MCP_RELIST_SECONDS have passed since the last listing began, read on the gate's clock
(`now - last >= MCP_RELIST_SECONDS`). The gate's clock is the wall clock (SystemClock,
`time.time()`), which an NTP step or an operator sets back: after it went back by D seconds,
`now - last` stayed negative for D seconds, and for all that time every call of a tool the
upstream added since was denied as undeclared, whatever the interval, unless a caller's own
tools/list happened to list it.

The test's upstream is the orders server of the gate tests, hiding `refund` from the gate's
first listing (a tool added upstream afterwards). It was a strict xfail until the gate listed
again on a clock behind its last listing.

Two listings at once (callers' tools/list, which the bound does not serialise) stored whichever
ended last: one begun before a tool was added upstream, ending after one begun since, left the
gate with the older listing (the tool denied as undeclared). The gate keeps the listing begun
last (a strict xfail until then).
"""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
from mcp import Client

from tests.support.gates import T, make_world
from tests.support.mcp_orders import orders_server, text
from troth.clock import FixedClock
from troth.integrations.mcp.gate import McpGate


class Adding:
    """An `Upstream` passing requests to `client`, listing `refund` only once `added`."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.added = False
        self.pages = 0

    async def list_tools(self, *, cursor: str | None = None) -> types.ListToolsResult:
        self.pages += 1
        listed = await self.client.list_tools(cursor=cursor)
        tools = [t for t in listed.tools if self.added or t.name != "refund"]
        return types.ListToolsResult(tools=tools, next_cursor=listed.next_cursor)

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult:
        return await self.client.call_tool(name, arguments)


def test_a_tool_added_upstream_is_listed_after_the_clock_went_back() -> None:
    """The gate lists the upstream (without `refund`) at T + 300; its clock is set back 200 s
    and `refund` is added upstream: a call of it lists the upstream again and runs (it
    was denied as undeclared until the clock passed T + 310)."""

    async def main() -> None:
        world = make_world()
        support = world.credential(world.support_chain, world.support)
        clock = FixedClock(T + 300)
        point = world.point(world.store(world.bundle()))
        async with Client(orders_server(), cache=None) as client:
            upstream = Adding(client)
            gate = McpGate(point, upstream, clock=clock)
            looked = await gate.call_tool(support, "lookup_order", {"order_id": "o7"})
            assert (looked.is_error, text(looked)) == (False, "order o7: 2 items, paid")
            assert upstream.pages == 1
            clock.advance(-200)
            upstream.added = True
            refunded = await gate.call_tool(support, "refund", {"order_id": "o1", "amount": 20})
            assert (refunded.is_error, text(refunded)) == (False, "refunded 20 on o1")
            assert upstream.pages == 2
            assert (await gate.call_tool(support, "made_up", {})).is_error
            assert upstream.pages == 2  # the bound holds again from the new listing

    anyio.run(main)


class Held(Adding):
    """`Adding`, whose first listing waits for `release` (a slow listing)."""

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        self.started = anyio.Event()
        self.release = anyio.Event()

    async def list_tools(self, *, cursor: str | None = None) -> types.ListToolsResult:
        listed = await super().list_tools(cursor=cursor)  # read now: without `refund`
        if self.pages == 1:
            self.started.set()
            await self.release.wait()
        return listed


def test_a_slow_listing_does_not_replace_a_newer_one() -> None:
    """Two callers' tools/list at once: the first listing (begun before `refund` was added
    upstream) ends after the second (which lists it): the gate keeps the second, and a call of
    `refund` next runs without another listing."""

    async def main() -> None:
        world = make_world()
        support = world.credential(world.support_chain, world.support)
        point = world.point(world.store(world.bundle()))
        async with Client(orders_server(), cache=None) as client:
            upstream = Held(client)
            gate = McpGate(point, upstream, clock=FixedClock(T + 300))
            async with anyio.create_task_group() as listings:
                listings.start_soon(gate.list_tools, support)
                await upstream.started.wait()
                upstream.added = True
                newer = await gate.list_tools(support)
                assert "refund" in [tool.name for tool in newer.tools]
                upstream.release.set()
            refunded = await gate.call_tool(support, "refund", {"order_id": "o1", "amount": 20})
            assert (refunded.is_error, text(refunded)) == (False, "refunded 20 on o1")
            assert upstream.pages == 2

    anyio.run(main)
