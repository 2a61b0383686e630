"""Review 59h, refuted: attacks on the room a published MCP server's session keeps for its
answers (review 59a, mcp 1: troth.integrations.mcp.room) that did not work. Every path a
request can end by (answered, denied, cancelled at the upstream or while waiting for room, a
duplicate id, an unknown method, a notification, the gate's "send later") gives its room back
exactly once: once the client has read every answer, the session's room is empty, no promise
left (no garbage collection asked for), and each call was recorded once."""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
import pytest

from tests.support.waits import until
from tests.test_review47m_mcp_cancel import Blocking, outcomes
from tests.test_review58f_mcp import _settle, offer, served
from tests.test_review58j_refuted import _answers
from tests.test_review59h_mcp import Client, _call, _ping
from troth import limits
from troth.gates import ListRecorder
from troth.integrations.mcp import channel
from troth.integrations.mcp.room import AnswerRoom

HELD = limits.MAX_MCP_CALLS_PER_SESSION + limits.MAX_MCP_QUEUE
"""The tools/call and tools/list a session holds in the gate at most (review 55s, mcp 1)."""


def _cancel(ident: int) -> dict[str, Any]:
    params = {"requestId": ident, "reason": "the agent gave up"}
    return {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params}


def _lookup(ident: int) -> dict[str, Any]:
    return _call(ident, "lookup_order", order_id=f"o{ident}")


def _send_later(answer: dict[str, Any]) -> bool:
    """Whether `answer` is the gate's "send later" (a request past what a session holds)."""
    error = answer.get("error") or {}
    return "send later" in str(error.get("message", ""))


def test_every_way_a_request_ends_gives_its_room_back_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rooms: list[AnswerRoom] = []

    def room(*args: Any) -> AnswerRoom:
        rooms.append(AnswerRoom(*args))
        return rooms[-1]

    monkeypatch.setattr(channel, "AnswerRoom", room)
    upstream, client, recorder = Blocking(), Client(), ListRecorder()
    sent: list[int] = []
    later: list[int] = []  # answered "send later": never decided
    answered = sorted([0, 1, 3, 4, 5, 6, 7, 999, *range(100, 100 + HELD - 2)])

    async def main() -> None:
        async with served(client.way_back, upstream, recorder, client.release) as (inbound, _):
            for message in (
                _lookup(1),  # at the upstream, then answered
                _lookup(2),  # at the upstream, then cancelled there
                _lookup(3),
                _lookup(3),  # the same id twice: the later one cancelled
                _call(4, "refund", order_id="o4", amount=1),  # answered at once
                {"jsonrpc": "2.0", "id": 5, "method": "tools/list"},
                {"jsonrpc": "2.0", "id": 6, "method": "tools/unknown"},  # the SDK's error
                {"jsonrpc": "2.0", "method": "notifications/whatever"},  # answers nothing
            ):
                assert offer(inbound, message)
                await _settle()
            # calls 2 and 3 judged (on a gate thread) before they are cancelled: one cancelled
            # before its judge started is never decided nor recorded (review 73w, flake59h 1)
            await until(lambda: outcomes(recorder).count(("lookup_order", "allowed")) == 4)
            for message in (_cancel(2), _cancel(3), _cancel(99)):  # 99: never asked
                assert offer(inbound, message)
                await _settle()
            # and gone from the gate, their unanswered records written on a gate thread: till
            # then they are in progress in the session, and the range's last calls would be
            # answered "send later" (review 73w, flake59h 2)
            await until(
                lambda: (
                    outcomes(recorder).count(("lookup_order", "unanswered")) == 2
                    and len(rooms[0]._promises) == 2
                )  # calls 1 and 3 at the upstream
            )
            # calls until the gate holds HELD: the next is answered at once ("send later")
            for ident in range(100, 100 + HELD - 2):
                assert offer(inbound, _lookup(ident))
                await _settle()
            assert offer(inbound, _lookup(999))
            await _settle()
            assert rooms[0].frames == rooms[0].bytes == 0  # the client read every answer
            assert len(rooms[0]._promises) == limits.MAX_MCP_CALLS_PER_SESSION
            upstream.release.set()
            await client.asked(inbound, _ping(7))
            # every answer (HELD + 4 left the last two, each judged on a gate thread, holding
            # their room: review 73w, flake59h 3)
            await until(lambda: len(_answers(client.frames)) == len(answered))
            for _ in range(5):
                await _settle()
            sent.extend(a["id"] for a in _answers(client.frames))
            later.extend(a["id"] for a in _answers(client.frames) if _send_later(a))
            assert (rooms[0].bytes, rooms[0].frames, len(rooms[0]._promises)) == (0, 0, 0)

    anyio.run(main)
    assert sorted(sent) == answered
    calls = [1, 3, 4, *range(100, 100 + HELD - 2)]
    expected = sorted(
        [("lookup_order", "allowed")] * (len(calls) - 1)
        + [("refund", "allowed")]
        + [("lookup_order", "allowed"), ("lookup_order", "unanswered")] * 2
    )
    assert later == [999]  # every other call decided (each judged before it is answered)
    assert sorted(outcomes(recorder)) == expected


def test_a_waiter_cancelled_as_it_is_woken_leaves_the_room_to_the_next() -> None:
    """Two calls wait for the one answer's room; as it frees, the first is cancelled (its
    client's notifications/cancelled) in the same turn: the second takes the room (the first
    may take it first, and lets it go as its cancellation lands), never left waiting with the
    room free."""
    room = AnswerRoom(100, 10, 100)
    got: list[int] = []

    async def call(ident: int, scope: anyio.CancelScope) -> None:
        with scope:
            async with room.promised(ident):
                got.append(ident)
                await anyio.sleep_forever()

    async def main() -> None:
        first, second = anyio.CancelScope(), anyio.CancelScope()
        assert room.queued(types.JSONRPCNotification(jsonrpc="2.0", method="n"), 100)
        async with anyio.create_task_group() as tg:
            tg.start_soon(call, 1, first)
            await _settle()
            tg.start_soon(call, 2, second)
            await _settle()
            room.taken(100)  # the room frees: both are woken
            first.cancel()
            await _settle()
            assert got[-1] == 2  # the first took it, if at all, only to let it go
            second.cancel()
        assert not room._promises

    anyio.run(main)
