"""Review 59a, mcp 1: the fix of review 58v, mcp 1 (a session's calls hold room for their
answers in its backlog; troth.integrations.mcp.room), seen from the attacker's side and the
trace's.

A published MCP server's session (`run_session`) gave a call's place back as the upstream
answered it, so a client slow to take its answers, with a few more calls than
MAX_MCP_CALLS_PER_SESSION whose results were near a frame each, overflowed
MAX_MCP_SESSION_BACKLOG and lost its session. Now a tools/call (or tools/list) waits, before it
is decided, for room for the largest answer in the backlog: the client waits, nothing is
dropped. The bound stays: a client that sends calls and reads none holds at most the backlog
of answers (its calls past it wait in the gate, undecided), and one that goes on sending has
its session ended as fallen behind once the answers the gate gives at once (its "send later"
errors) fill what room is left. A call its client cancels while it waits for room is never
decided nor recorded.
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import anyio
import mcp_types as types

from tests.test_review47m_mcp_cancel import outcomes
from tests.test_review58f_mcp import WayBack, _settle, offer, served
from tests.test_review58j_refuted import _answers
from tests.test_review58t_mcp import answering, lookup, room_for
from tests.test_review58v_mcp import FULL
from troth import limits
from troth.gates import ListRecorder
from troth.integrations.mcp.room import AnswerRoom

FIRST = 2 * limits.MAX_MCP_CALLS_PER_SESSION
"""The calls the attacker sends first: more than its backlog has room for the answers of."""


def reading_after(release: anyio.Event, frames: list[bytes]) -> WayBack:
    """The way back of a client that takes its frames (into `frames`) once `release` is set."""

    async def way_back(frame: bytes) -> bool:
        await release.wait()
        frames.append(frame)
        return True

    return way_back


async def _until(done: Any) -> None:
    """Wait (at most 5 s) until `done()`."""
    with anyio.move_on_after(5):
        while not done():
            await anyio.sleep(0.01)


def test_a_client_that_sends_calls_and_reads_none_holds_the_backlog_then_ends() -> None:
    """The attacker sends FIRST calls of results a frame each and reads none: the session
    holds at most MAX_MCP_SESSION_BACKLOG of answers (those it had room for), the rest wait in
    the gate undecided, and it goes on. Sending on, its next calls are answered at once with
    the gate's error until those fill the room left: then it has fallen behind and ends. Only
    the calls that had room reached the upstream, each recorded allowed."""
    upstream, recorder, release = answering(FULL), ListRecorder(), anyio.Event()
    held: list[int] = []
    sent: list[int] = []
    ends: list[bool] = []

    async def way_back(frame: bytes) -> bool:  # the client reads nothing
        await release.wait()
        return True

    async def main() -> None:
        async with served(way_back, upstream, recorder, release) as (inbound, ended):
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                for ident in range(1, FIRST + 1):
                    await _settle()
                    assert offer(inbound, lookup(ident))
                await _until(lambda: upstream.answered >= room_for(FULL))
                for _ in range(10):  # every answer written where it waits
                    await anyio.sleep(0.01)
                held.append(tracemalloc.get_traced_memory()[0] - before)
            finally:
                tracemalloc.stop()
            ends.extend(ended)
            for ident in range(FIRST + 1, FIRST + 4 * limits.MAX_MCP_QUEUE):
                await _settle()
                if not offer(inbound, lookup(ident)):
                    break  # the session ended
                sent.append(ident)
            else:
                sent.append(0)  # never refused

    anyio.run(main)
    assert held[0] <= limits.MAX_MCP_SESSION_BACKLOG + limits.MAX_MCP_FRAME, held
    assert ends == []  # holding its backlog, the session went on
    assert 0 not in sent  # then it ended, as fallen behind: its next call was refused
    assert upstream.answered == room_for(FULL) == limits.MAX_MCP_CALLS_PER_SESSION
    assert outcomes(recorder) == [("lookup_order", "allowed")] * upstream.answered


def test_a_call_cancelled_while_it_waits_for_room_is_never_decided() -> None:
    """Two calls wait for room behind a slow client; it cancels one: that one is never
    decided, recorded nor answered, its wait leaves no room taken, and every other call is
    answered once, recorded allowed once."""
    calls = room_for(FULL) + 2
    upstream, recorder, release = answering(FULL), ListRecorder(), anyio.Event()
    frames: list[bytes] = []
    way_back = reading_after(release, frames)

    async def main() -> None:
        async with served(way_back, upstream, recorder, release) as (inbound, _):
            for ident in range(1, calls + 1):
                await _settle()
                assert offer(inbound, lookup(ident))
            await _until(lambda: upstream.answered >= room_for(FULL))
            cancel = {"requestId": calls - 1, "reason": "the agent gave up"}
            assert offer(
                inbound, {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": cancel}
            )
            await _settle()
            release.set()
            await _until(lambda: len(_answers(frames)) >= calls)
            await _settle()

    anyio.run(main)
    answered = [a["id"] for a in _answers(frames) if a.get("id") not in (None, 0)]
    assert sorted(answered) == [i for i in range(1, calls + 1) if i != calls - 1]
    assert upstream.answered == calls - 1
    assert outcomes(recorder) == [("lookup_order", "allowed")] * (calls - 1)


def _response(ident: int) -> types.JSONRPCResponse:
    return types.JSONRPCResponse(jsonrpc="2.0", id=ident, result={})


NOTE = types.JSONRPCNotification(jsonrpc="2.0", method="notifications/tools/list_changed")


def test_the_room_promised_to_a_call_takes_its_answer_and_no_other_frame() -> None:
    """The room promised to a request is taken by its own answer, written by its task: not by
    a notification written first, nor by another answer, which fit only in the room left."""
    room = AnswerRoom(250, 10, 100)

    async def answering_task() -> None:
        async with room.promised(1):
            pass  # returned: its answer is written next, in this task
        assert room.queued(NOTE, 60)  # the room left: 250 - 100 promised
        assert not room.queued(_response(2), 100)  # not its answer: no room left for it
        assert room.queued(_response(1), 100)  # its answer: in its room

    anyio.run(answering_task)
    assert (room.bytes, room.frames) == (160, 2)


def test_a_call_waits_for_room_until_a_frame_is_taken() -> None:
    room = AnswerRoom(250, 10, 100)
    got: list[bool] = []

    async def call() -> None:
        async with room.promised(1):
            got.append(True)

    async def main() -> None:
        assert room.queued(NOTE, 100)
        assert room.queued(NOTE, 100)
        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            await _settle()
            assert got == []  # 200 waiting: no room for an answer of 100
            room.taken(100)
        assert got == [True]

    anyio.run(main)


def test_the_room_of_a_request_ended_unanswered_is_let_go() -> None:
    """A request cancelled in the gate (its client's notifications/cancelled, the session
    ending) lets its room go; so does one whose task ends without its answer (the SDK writes
    none to a request its client cancelled once its handler was done)."""
    room = AnswerRoom(100, 10, 100)

    async def cancelled() -> None:
        with anyio.CancelScope() as scope:
            async with room.promised(1):
                scope.cancel()
                await anyio.sleep(1)

    async def unanswered() -> None:
        async with room.promised(2):
            pass

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(cancelled)
        assert room.queued(NOTE, 100)
        room.taken(100)
        async with anyio.create_task_group() as tg:
            tg.start_soon(unanswered)
        gc.collect()
        assert room.queued(NOTE, 100)

    anyio.run(main)
