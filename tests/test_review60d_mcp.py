"""Review 60d, gates.mcp.call: the MCP gate's own work per tool call (the bench row
`gates.mcp.call`: its added latency less one decision is held to 0.5 ms).

1. A tools/call through the gate took one more trip through the event loop than the same call
   through a bare forwarding server: the session's call slots (`anyio.Semaphore`) yielded to the
   loop on every acquire, even with a slot free (an epoll poll and a pass over the ready tasks
   per call, ~10-80 us on the shared host). A free slot is now taken at once
   (`fast_acquire`); a call finding none waits in turn as before (the bound and the order are
   pinned by tests/test_review30c_mcp.py and tests/test_review55s_mcp.py).
2. Over a secure channel, every answer a session queued and every frame taken out made a new
   `anyio.Event` for the calls waiting for room (`AnswerRoom._wake`), two or three per call,
   with none waiting. Now the event is made anew only when a call waits on it (the calls
   waiting are woken as before: tests/test_review59n_mcp.py, tests/test_review59o_mcp.py).

Counted, not timed: the loop's iterations for a number of calls, each side in its own loop,
the upstream's tool async (no worker thread, so the count is the same at every run).
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import mcp_types as types
from mcp import Client
from mcp.server import MCPServer, Server

from tests.support.gates import T, make_world
from tests.support.mcp_orders import text
from troth import limits
from troth.clock import FixedClock
from troth.integrations.mcp.gate import McpGate, gate_server
from troth.integrations.mcp.room import AnswerRoom

CALLS = 20


class _Counting(asyncio.SelectorEventLoop):
    """An event loop that counts its iterations."""

    turns = 0

    def _run_once(self) -> None:
        _Counting.turns += 1
        super()._run_once()  # type: ignore[misc]


def _upstream() -> MCPServer:
    """The orders server's refund, async: no worker thread, so every run turns alike."""
    app = MCPServer("orders")

    @app.tool()
    async def refund(order_id: str, amount: int) -> str:
        """Refund part of an order."""
        return f"refunded {amount} on {order_id}"

    return app


def _forwarding(upstream: Client) -> Server[Any]:
    """A bare MCP server that forwards every tools/call to `upstream` (what a gate costs at
    least: one more MCP hop)."""

    async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return await upstream.call_tool(params.name, params.arguments)

    async def on_list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return await upstream.list_tools()

    return Server("forward", on_list_tools=on_list_tools, on_call_tool=on_call_tool)


def _turns(gated: bool) -> int:
    """The loop's iterations for CALLS allowed refunds through the gate (or the bare server)."""
    world = make_world()
    support = world.credential(world.support_chain, world.support)
    point = world.point(world.store(world.bundle()))

    async def main() -> int:
        async with Client(_upstream(), cache=None) as upstream:
            gate = McpGate(point, upstream, clock=FixedClock(T + 10))
            server = gate_server(gate, support) if gated else _forwarding(upstream)
            async with Client(server, mode="legacy", cache=None) as agent:
                args = {"order_id": "o1", "amount": 20}
                for _ in range(2):  # the listings, the caches
                    await agent.call_tool("refund", args)
                before = _Counting.turns
                for _ in range(CALLS):
                    result = await agent.call_tool("refund", args)
                    assert (result.is_error, text(result)) == (False, "refunded 20 on o1")
                return _Counting.turns - before

    turns: int = anyio.run(main, backend_options={"loop_factory": _Counting})
    return turns


def test_a_call_through_the_gate_turns_the_loop_no_more_than_a_bare_forwarding_server() -> None:
    bare = _turns(gated=False)
    assert bare >= CALLS  # counted: every call waits on the loop at least once
    assert _turns(gated=True) <= bare


def test_answers_with_no_call_waiting_for_room_make_no_event(monkeypatch: Any) -> None:
    made: list[object] = []
    real = anyio.Event

    def counted() -> anyio.Event:
        event = real()
        made.append(event)
        return event

    async def main() -> None:
        kept = (limits.MCP_AT_ONCE_BYTES, limits.MCP_AT_ONCE_FRAMES)
        room = AnswerRoom(limits.MAX_MCP_SESSION_BACKLOG, 64, limits.MAX_MCP_FRAME, kept)
        monkeypatch.setattr(anyio, "Event", counted)  # what room.py makes its events with
        for ident in range(CALLS):
            async with room.promised(ident):
                pass  # the handler answers
            answer = types.JSONRPCResponse(jsonrpc="2.0", id=ident, result={})
            assert room.queued(answer, 300)  # in the room promised to it
            room.taken(300)
            assert room.queued(types.JSONRPCNotification(jsonrpc="2.0", method="x"), 50)
            room.taken(50)
        assert (room.bytes, room.frames) == (0, 0)

    anyio.run(main)
    assert made == []
