"""Review 30c, the MCP gate (`troth.integrations.mcp.gate.McpGate`) against the agent.

1. Every call of a name the last listing does not know, within MCP_RELIST_SECONDS of it, is
   judged against that listing (denied as undeclared) and the listing cached what fills the
   name's defaults: nothing, under the name. Each made-up name stayed in the cache until the
   next listing, so an agent calling made-up names of a megabyte each (a local gate reads
   stdin without a bound; a published one, a member's MCP budget) held that much of the
   gate's memory per call.
2. Every tools/list listed the upstream at once (up to MAX_TOOL_PAGES pages, the whole list
   held until answered): a member's burst of small tools/list requests (4,096 of them, each
   charged MCP_MESSAGE_CHARGE of its budget) made as many listings of the upstream at once, each
   holding the upstream's whole list, however large its catalogue.
5. One session's tools/call requests all ran at once (the MCP SDK's server starts each request
   as it comes): a member's burst (4,096 small calls in its MCP budget) had as many calls at
   the shared upstream at once, and as many decisions queued for the process's worker threads
   (anyio's default limiter, 40 for everything), ahead of every other member's.

And `troth mcp gate` (troth.integrations.mcp.local):

3. an upstream that exits at once, or speaks no MCP, failed the command with the MCP SDK's
   exception group: a traceback, exit 1, no JSON with --json;
4. so did `troth mcp serve` of such an upstream (the node answered the exception group,
   naming neither the upstream nor why).
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters

from tests.support.cli import run
from tests.support.gates import T, make_world
from tests.support.mcp_orders import orders_server, text
from tests.support.nodes import MemNet, run_memnet
from troth import limits
from troth.cli.common import home
from troth.clock import FixedClock
from troth.integrations.mcp.gate import McpGate, gate_server
from troth.integrations.mcp.local import serve_local_gate
from troth.node import DEFAULT_NODE
from troth.node.services.mcp import publish_upstream

_CALLS = 8
_NAME_BYTES = 256 * 1024


def test_calls_of_made_up_names_do_not_hold_memory() -> None:
    """Mcp 1: 8 calls of made-up names of 256 KiB each, within a listing's interval, are
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


class Slow:
    """An `Upstream` passing requests to `client` whose listings wait for `release`, counting
    the listings it serves at once and in all."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.release = anyio.Event()
        self.active = self.most = self.listings = 0

    async def list_tools(self, *, cursor: str | None = None) -> types.ListToolsResult:
        self.listings += 1
        self.active += 1
        self.most = max(self.most, self.active)
        try:
            await self.release.wait()
            return await self.client.list_tools(cursor=cursor)
        finally:
            self.active -= 1

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult:
        return await self.client.call_tool(name, arguments)


def test_concurrent_tools_lists_share_the_upstreams_listings() -> None:
    """Mcp 2: 32 tools/list at once (an agent's burst, 128 KiB of its MCP budget) make a few
    listings of the upstream, not 32 held at once, and each answer lists the tools (was a strict
    xfail until the gate made at most MAX_MCP_LISTINGS listings at once for tools/list, a
    waiting one answered with a listing begun since it was asked)."""

    async def main() -> None:
        world = make_world()
        support = world.credential(world.support_chain, world.support)
        point = world.point(world.store(world.bundle()))
        async with Client(orders_server(), cache=None) as client:
            upstream = Slow(client)
            gate = McpGate(point, upstream, clock=FixedClock(T + 300))
            answers: list[list[str]] = []

            async def list_once() -> None:
                listed = await gate.list_tools(support)
                answers.append(sorted(tool.name for tool in listed.tools))

            async with anyio.create_task_group() as group:
                for _ in range(32):
                    group.start_soon(list_once)
                await anyio.wait_all_tasks_blocked()
                most = upstream.most
                upstream.release.set()
            assert answers == [["lookup_order", "refund"]] * 32
            assert most <= limits.MAX_MCP_LISTINGS, f"{most} listings of the upstream at once"
            assert upstream.listings <= limits.MAX_MCP_LISTINGS + 1

    anyio.run(main)


def test_an_upstream_that_ends_is_a_typed_error() -> None:
    """Mcp 3: `troth mcp gate` whose upstream exits at once (or speaks no MCP) failed with the
    MCP SDK's exception group: a traceback, exit 1 (a verdict) and nothing on stdout with
    --json, where the command's errors are typed. Was a strict xfail until the gate reported
    the SDK's error as an OSError naming the upstream (`upstream_error`): exit 4, I/O."""
    run("identity", "create", "someone")
    with pytest.raises(OSError, match=r"the upstream MCP server .*: Connection closed"):
        anyio.run(serve_local_gate, home(), DEFAULT_NODE, "someone", [sys.executable, "-c", ""])


def test_a_published_upstream_that_ends_is_a_typed_error(tmp_path: Path) -> None:
    """Mcp 4: `troth mcp serve` of an upstream that exits at once: the node answered the
    MCP SDK's exception group (`unhandled errors in a TaskGroup`, naming neither the upstream
    nor why), where it answers an I/O error naming the server and the SDK's reason. Was a
    strict xfail until the service reported the SDK's error so (`upstream_error`)."""

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        dead = StdioServerParameters(command=sys.executable, args=["-c", ""])
        with pytest.raises(OSError, match=r"the upstream MCP server mcp\.dead .*Connection closed"):
            await publish_upstream(net.hub, "dead", dead)
        assert "mcp.dead" not in net.hub.host.services

    run_memnet(test, tmp_path)


class Busy(Slow):
    """`Slow`, whose tool calls wait for `release` instead of its listings."""

    async def list_tools(self, *, cursor: str | None = None) -> types.ListToolsResult:
        return await self.client.list_tools(cursor=cursor)

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult:
        self.active += 1
        self.most = max(self.most, self.active)
        try:
            await self.release.wait()
            return await self.client.call_tool(name, arguments)
        finally:
            self.active -= 1


def test_one_sessions_calls_in_flight_are_bounded() -> None:
    """Mcp 5: 32 tools/call at once in one session (the MCP SDK's server runs each request as
    it comes) reach the upstream a few at a time, and all are answered. Was a strict xfail
    until `gate_server` let MAX_MCP_CALLS_PER_SESSION calls run at once."""

    async def main() -> None:
        world = make_world()
        support = world.credential(world.support_chain, world.support)
        point = world.point(world.store(world.bundle()))
        async with Client(orders_server(), cache=None) as client:
            upstream = Busy(client)
            gate = McpGate(point, upstream, clock=FixedClock(T + 300))
            server = gate_server(gate, support)
            async with Client(server, mode="legacy", cache=None) as agent:
                answers: list[str] = []

                async def call_once() -> None:
                    answers.append(text(await agent.call_tool("lookup_order", {"order_id": "o7"})))

                async with anyio.create_task_group() as group:
                    for _ in range(32):
                        group.start_soon(call_once)
                    await anyio.wait_all_tasks_blocked()
                    most = upstream.most
                    upstream.release.set()
            assert answers == ["order o7: 2 items, paid"] * 32
            assert most <= limits.MAX_MCP_CALLS_PER_SESSION, f"{most} calls at once"

    anyio.run(main)
