"""Review 55s, mcp 1: the requests one MCP session has waiting in the gate are bounded.

The MCP SDK's server starts a task for every request as it reads it, so a session's inbound
queue (MAX_MCP_QUEUE messages) never fills while its tools/call wait for one of the session's
MAX_MCP_CALLS_PER_SESSION slots: a member whose calls the upstream is slow to answer (a tool
that takes its time, an upstream that hangs) piled up waiting calls, each holding its
arguments (up to a frame, ~1 MiB), as fast as its budget lets it send (1 MiB/s, for as long as
the upstream is slow): the node's memory grew without bound. A session now holds at most
MAX_MCP_CALLS_PER_SESSION + MAX_MCP_QUEUE requests in the gate (tools/call and tools/list);
past it a request is answered at once with the gate's error, never decided nor forwarded.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server import Server
from mcp.shared.message import SessionMessage

from tests.support.gates import make_world
from tests.test_review47m_mcp_cancel import Blocking, gate_of, outcomes
from troth import limits
from troth.gates import ListRecorder
from troth.integrations.mcp.channel import decode_message
from troth.integrations.mcp.gate import DENIED_PREFIX, gate_server


def raw(value: Any) -> SessionMessage:
    return decode_message(json.dumps(value).encode())


def call(ident: int, name: str, arguments: dict[str, Any]) -> SessionMessage:
    params = {"name": name, "arguments": arguments}
    return raw({"jsonrpc": "2.0", "id": ident, "method": "tools/call", "params": params})


Streams = tuple[
    MemoryObjectSendStream[SessionMessage | Exception], MemoryObjectReceiveStream[SessionMessage]
]


@asynccontextmanager
async def raw_session(upstream: Blocking, recorder: ListRecorder) -> AsyncIterator[Streams]:
    """The support agent's MCP session with a gate in front of `upstream`, over memory streams,
    initialized: (what the client sends, what it reads)."""
    world = make_world()
    support = world.credential(world.support_chain, world.support)
    async with (
        gate_of(world, upstream, recorder) as gate,
        _run(gate_server(gate, support)) as streams,
    ):
        yield streams


@asynccontextmanager
async def _run(server: Server[Any]) -> AsyncIterator[Streams]:
    send, read = anyio.create_memory_object_stream[SessionMessage | Exception](64)
    write, out = anyio.create_memory_object_stream[SessionMessage](64)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.run, read, write, server.create_initialization_options())
        hello = {"name": "agent", "version": "1"}
        init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": hello}
        await send.send(raw({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init}))
        await out.receive()
        await send.send(raw({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        yield send, out
        tg.cancel_scope.cancel()


def test_a_session_holds_a_bounded_number_of_waiting_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "MAX_MCP_CALLS_PER_SESSION", 1)
    monkeypatch.setattr(limits, "MAX_MCP_QUEUE", 3)
    recorder, upstream = ListRecorder(), Blocking()
    answers: list[Any] = []

    async def main() -> None:
        async with raw_session(upstream, recorder) as (send, out):
            for ident in range(1, 7):  # 1 at the upstream, 3 waiting, 2 past the bound
                await send.send(call(ident, "lookup_order", {"order_id": "o1"}))
                if ident == 1:
                    await upstream.started.wait()
            listing = {"jsonrpc": "2.0", "id": 7, "method": "tools/list"}
            await send.send(raw(listing))
            with anyio.fail_after(10):  # answered at once, the upstream still busy
                for _ in range(3):
                    answers.append((await out.receive()).message)
            upstream.release.set()
            with anyio.fail_after(10):
                for _ in range(4):
                    answers.append((await out.receive()).message)

    anyio.run(main)
    refused = answers[:3]
    assert sorted(a.id for a in refused) == [5, 6, 7]
    for answer in refused:
        assert isinstance(answer, types.JSONRPCError)
        assert answer.error.message.startswith(DENIED_PREFIX)
        assert "requests in progress" in answer.error.message
    assert sorted(a.id for a in answers[3:]) == [1, 2, 3, 4]
    assert all(isinstance(a, types.JSONRPCResponse) for a in answers[3:])
    assert outcomes(recorder) == [("lookup_order", "allowed")] * 4  # the refused: not decided
    assert upstream.answered == 4
