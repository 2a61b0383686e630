"""Review 57l: attacks on the MCP gate that did not work (each test fails if its defence
breaks). Real MCP clients and servers (the SDK's), in process.

1. A flood of `notifications/tools/list_changed` from the upstream: each announcement only
   marks the gate's listing stale, so a thousand of them cost the next call one listing, not
   a thousand, and every call is still decided and recorded once.
2. An upstream that answers the MCP handshake but never its tools/list is not published: its
   publication fails within START_TIMEOUT (the gate's first listing is part of it since review
   57l, mcp 1) and leaves no service behind.
3. An upstream that never answers a call, on a published server's session (`run_session`):
   the client ending its session (a null frame, its channel closed) ends the call too, which
   is recorded unanswered after its allowed record; nothing of the session is left running.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.server import Server, ServerRequestContext

from tests.support.gates import TOOLS, T, make_world
from tests.support.mcp_orders import text
from tests.support.nodes import MemNet, run_memnet
from tests.test_review54j_mcp import _gate
from troth.clock import FixedClock
from troth.gates import ListRecorder, Outcome
from troth.integrations.mcp.channel import decode_message, new_session, run_session
from troth.integrations.mcp.gate import McpGate, UpstreamChanges, gate_server
from troth.node.services import mcp as mcp_service
from troth.node.services.mcp import publish_upstream

FLOOD = 1000


def test_a_flood_of_list_changed_costs_one_listing() -> None:
    """1 (module docstring)."""
    world = make_world()
    recorder = ListRecorder()
    point = world.point(world.store(world.bundle()), recorder)
    caller = world.credential(world.support_chain, world.support)
    listings: list[None] = []

    async def on_list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        listings.append(None)
        schema = TOOLS["lookup_order"]
        tools = [types.Tool(name=n, input_schema=schema) for n in ("lookup_order", "flood")]
        return types.ListToolsResult(tools=tools)

    async def on_call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        if params.name == "flood":  # the operator's own call, not through the gate
            for _ in range(FLOOD):
                await ctx.session.send_tool_list_changed()
        return types.CallToolResult(content=[types.TextContent(type="text", text="done")])

    upstream = Server("orders", on_list_tools=on_list_tools, on_call_tool=on_call_tool)

    async def main() -> None:
        changes = UpstreamChanges()
        async with Client(upstream, mode="legacy", cache=None, message_handler=changes) as client:
            gate = McpGate(point, client, clock=FixedClock(T + 10), changes=changes)
            call = {"order_id": "o1"}
            assert text(await gate.call_tool(caller, "lookup_order", call)) == "done"
            assert len(listings) == 1
            await client.call_tool("flood", {"order_id": "x"})
            with anyio.fail_after(10):  # delivered on the client's own task
                while changes.count < FLOOD:
                    await anyio.sleep(0.01)
            for _ in range(3):
                assert text(await gate.call_tool(caller, "lookup_order", call)) == "done"
            assert len(listings) == 2  # one listing for the whole flood

    anyio.run(main)
    assert [r.decision.outcome for r in recorder.records] == [Outcome.ALLOWED] * 4


def test_an_upstream_that_never_lists_is_not_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2 (module docstring)."""
    monkeypatch.setattr(mcp_service, "START_TIMEOUT", 0.5)

    async def on_list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        await anyio.sleep_forever()
        raise AssertionError("never")

    async def none(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[])

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        with pytest.raises(TimeoutError):
            await publish_upstream(net.hub, "orders", Server("mute", on_list_tools=on_list_tools))
        assert "mcp.orders" not in net.hub.status()["services"]
        again = await publish_upstream(net.hub, "orders", Server("orders", on_list_tools=none))
        assert again["tools"] == []  # the name was not left taken

    run_memnet(test, tmp_path)


def test_a_session_that_ends_ends_its_unanswered_call() -> None:
    """3 (module docstring)."""

    async def on_list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        tool = types.Tool(name="lookup_order", input_schema=TOOLS["lookup_order"])
        return types.ListToolsResult(tools=[tool])

    async def on_call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        await anyio.sleep_forever()
        raise AssertionError("never")

    recorder = ListRecorder()
    info = {"name": "agent", "version": "1"}
    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": info}
    call = {"name": "lookup_order", "arguments": {"order_id": "o1"}}
    wires: list[dict[str, Any]] = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call},
    ]
    ended: list[bool] = []

    async def send(frame: bytes) -> bool:
        return True

    async def main() -> None:
        upstream = Server("mute", on_list_tools=on_list_tools, on_call_tool=on_call_tool)
        async with Client(upstream, mode="legacy", cache=None) as client:
            gate, caller = _gate(client, recorder)
            inbound, read = anyio.create_memory_object_stream[Any](len(wires))
            for wire in wires:
                inbound.send_nowait(decode_message(json.dumps(wire).encode()))
            with anyio.fail_after(30):  # a bound on a hang only: nothing is timed
                async with anyio.create_task_group() as group:
                    group.start_soon(
                        run_session, gate_server(gate, caller), read, new_session(), send
                    )
                    while not recorder.records:  # the call allowed, at the upstream
                        await anyio.sleep(0.01)
                    inbound.close()  # the client ends its session
                ended.append(True)  # run_session returned: nothing of it left running

    anyio.run(main)
    assert ended == [True]
    outcomes = [r.decision.outcome for r in recorder.records]
    assert outcomes == [Outcome.ALLOWED, Outcome.UNANSWERED]
