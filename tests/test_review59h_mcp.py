"""Review 59h: the room a published MCP server's session keeps for its answers (review 59a,
mcp 1: troth.integrations.mcp.room), from a slow honest client's side and an odd one's.

mcp 1: a tools/call or tools/list takes room for a whole frame (MAX_MCP_FRAME) before it is
decided, and eight of them at the upstream leave 16 KiB of MAX_MCP_SESSION_BACKLOG for every
other frame. A client slow to read with a little under 16 KiB of answers unread and its eight
calls at the upstream (long tool runs) had its session ended as fallen behind by its own
keepalive ping (or by the gate's notifications/tools/list_changed after a new bundle): the
calls' promised room left none for an answer given at once, where before review 59a the same
session held some 16 KiB and went on. Now a call or listing takes its room only while
MCP_AT_ONCE_BYTES and MCP_AT_ONCE_FRAMES stay free beside it.

mcp 2: an answer over MAX_MCP_FRAME gets a JSON-RPC error in its place; when even that error is
over a frame (a request whose id fills its frame: an unknown method's answer repeats the id),
encoding it raised out of the MCP SDK's writer and the session failed with a traceback in the
node's log, its client told nothing of the request. Now the answer is dropped, logged, and
the room promised to it let go at once (`AnswerRoom.unsent`).
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import mcp_types as types

from tests.test_review47m_mcp_cancel import Blocking
from tests.test_review58f_mcp import _settle, offer, served
from tests.test_review58j_refuted import _answers
from troth import limits
from troth.gates import ListRecorder
from troth.integrations.mcp.frames import McpFrame
from troth.integrations.mcp.room import AnswerRoom


class Client:
    """The way back of a client that reads until `stop` is called, then once `release` is
    set: the frames it took (`frames`)."""

    def __init__(self) -> None:
        self.release = anyio.Event()
        self.reading = True
        self.frames: list[bytes] = []

    async def way_back(self, frame: bytes) -> bool:
        if not self.reading:
            await self.release.wait()
        self.frames.append(frame)
        return True

    async def asked(self, inbound: Any, message: dict[str, Any]) -> int:
        """The size of the frame answering `message` (the client reading)."""
        taken = len(self.frames)
        assert offer(inbound, message)
        with anyio.fail_after(5):
            while len(self.frames) == taken:
                await anyio.sleep(0.01)
        return len(self.frames[-1])


def _ping(ident: int) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": ident, "method": "ping"}


def _call(ident: int, tool: str, **arguments: Any) -> dict[str, Any]:
    params = {"name": tool, "arguments": arguments}
    return {"jsonrpc": "2.0", "id": ident, "method": "tools/call", "params": params}


def _refund(ident: int, length: int) -> dict[str, Any]:
    return _call(ident, "refund", order_id="o" * length, amount=1)


SPARE = limits.MAX_MCP_SESSION_BACKLOG - limits.MAX_MCP_CALLS_PER_SESSION * limits.MAX_MCP_FRAME
"""What the room promised to the answers of a session's calls at the upstream leaves (16 KiB)."""


def test_a_keepalive_ping_beside_calls_at_the_upstream_keeps_a_slow_session() -> None:
    """The client reads its first answers (sizing them), then reads none for a while: one
    refund answered at once leaves a little under SPARE unread, its eight lookups run long at
    the upstream, and it pings. The ping is answered once it reads again; the session goes on."""
    upstream, client = Blocking(), Client()
    ended: list[bool] = []

    async def main() -> None:
        async with served(client.way_back, upstream, ListRecorder(), client.release) as (
            inbound,
            ending,
        ):
            ping = await client.asked(inbound, _ping(1))
            empty = await client.asked(inbound, _refund(2, 0))
            slope = (await client.asked(inbound, _refund(3, 10)) - empty) // 10
            client.reading = False
            assert offer(inbound, _ping(4))  # its answer waits on the way out, uncounted
            await _settle()
            unread = SPARE - ping  # the next ping (an id one digit longer) finds no room
            assert offer(inbound, _refund(5, -(-(unread - empty) // slope)))
            await _settle()
            for ident in range(10, 10 + limits.MAX_MCP_CALLS_PER_SESSION):
                assert offer(inbound, _call(ident, "lookup_order", order_id=f"o{ident}"))
                await _settle()
            assert offer(inbound, _ping(20))
            for _ in range(5):
                await _settle()
            ended.extend(ending)
            client.reading = True
            client.release.set()
            upstream.release.set()
            with anyio.fail_after(5):
                while len(_answers(client.frames)) < 15 and not ending:
                    await anyio.sleep(0.01)
            ended.extend(ending)

    anyio.run(main)
    assert ended == []
    answered = sorted(a["id"] for a in _answers(client.frames))
    assert answered == [0, 1, 2, 3, 4, 5, *range(10, 18), 20]


def _long_id(request: dict[str, Any]) -> dict[str, Any]:
    """`request` with a string id filling its frame (what the node's `send` takes at most)."""
    empty = len(McpFrame(bytes(16), json.dumps({**request, "id": ""}).encode()).encode())
    return {**request, "id": "i" * (limits.MAX_MCP_FRAME - empty)}


def test_a_request_whose_error_is_over_a_frame_goes_unanswered_and_the_session_on() -> None:
    """An unknown method's error and a listing, each with an id that fills its request's
    frame: neither answer nor the error in its place fits a frame; both are dropped (the
    listing's room let go), and the session answers the next ping."""
    client = Client()
    ended: list[bool] = []

    async def main() -> None:
        async with served(client.way_back, Blocking(), ListRecorder(), client.release) as (
            inbound,
            ending,
        ):
            unknown = {"jsonrpc": "2.0", "id": 1, "method": "tools/unknown"}
            listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
            assert offer(inbound, _long_id(unknown))
            assert offer(inbound, _long_id(listing))
            await client.asked(inbound, _ping(3))
            ended.extend(ending)

    anyio.run(main)  # the session failed: an ExceptionGroup of DecodeError out of it
    assert ended == []
    assert [a["id"] for a in _answers(client.frames)] == [0, 3]


def test_an_answer_not_sent_lets_its_room_go_to_a_waiting_call() -> None:
    """mcp 2, the room: the listing's answer (its error too) over a frame is not sent; the room
    promised to it goes at once to a call waiting for it, not when the listing's task is gone."""
    room = AnswerRoom(100, 10, 100)
    got: list[str] = []
    answer = types.JSONRPCResponse(jsonrpc="2.0", id=1, result={})

    async def listing(done: anyio.Event) -> None:
        async with room.promised(1):
            pass
        await done.wait()  # the task stays, as the SDK's until its answer is written
        room.unsent(answer)
        got.append("unsent")
        await anyio.sleep_forever()

    async def call() -> None:
        async with room.promised(2):
            got.append("room")

    async def main() -> None:
        done = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(listing, done)
            await _settle()
            tg.start_soon(call)
            await _settle()
            assert got == []  # the listing holds the room
            done.set()
            await _settle()
            tg.cancel_scope.cancel()

    anyio.run(main)
    assert got == ["unsent", "room"]
