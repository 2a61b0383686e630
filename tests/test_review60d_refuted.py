"""Review 60d, refuted: what the gate's cheaper call path (tests/test_review60d_mcp.py) might
have broken, tried and found holding.

- A session's room (`AnswerRoom`) no longer makes a new event per frame when no call waits:
  a call waiting for room is still woken by the frame taken that makes it, and by an answer
  queued in less than was promised to it.
- A session's call slots are taken without a trip through the event loop when free: a call
  past MAX_MCP_CALLS_PER_SESSION still waits, undecided, until one is given back.
"""

from __future__ import annotations

import anyio
import anyio.lowlevel
import mcp_types as types
from mcp import Client

from tests.support.gates import make_world
from tests.test_review47m_mcp_cancel import Blocking, gate_of
from tests.test_review59a_mcp import _until
from troth import limits
from troth.gates import ListRecorder
from troth.integrations.mcp.gate import gate_server
from troth.integrations.mcp.room import AnswerRoom

FRAME = 1000


async def _settle() -> None:
    for _ in range(8):
        await anyio.lowlevel.checkpoint()


def test_a_call_waiting_for_room_is_woken_by_the_frame_taken_that_makes_it() -> None:
    async def main() -> None:
        room = AnswerRoom(3 * FRAME, 8, FRAME)  # room for three frames
        for _ in range(3):
            assert room.queued(types.JSONRPCNotification(jsonrpc="2.0", method="x"), FRAME)
        promised: list[int] = []

        async def call(ident: int) -> None:
            async with room.promised(ident):
                promised.append(ident)

        async with anyio.create_task_group() as group:
            group.start_soon(call, 1)
            await _settle()
            assert promised == []  # no room: it waits
            room.taken(FRAME)
            await _until(lambda: promised)
            group.cancel_scope.cancel()  # a call never woken would wait on
        assert promised == [1]

    anyio.run(main)


def test_a_call_waiting_for_room_is_woken_by_an_answer_smaller_than_its_promise() -> None:
    async def main() -> None:
        room = AnswerRoom(2 * FRAME + 10, 8, FRAME)
        assert room.queued(types.JSONRPCNotification(jsonrpc="2.0", method="x"), FRAME)
        promised: list[int] = []
        answer = anyio.Event()

        async def first() -> None:
            async with room.promised(1):
                await answer.wait()
            # the SDK writes the answer next, in this task: 10 bytes of the FRAME promised
            assert room.queued(types.JSONRPCResponse(jsonrpc="2.0", id=1, result={}), 10)

        async def second() -> None:
            async with room.promised(2):
                promised.append(2)

        async with anyio.create_task_group() as group:
            group.start_soon(first)
            await _settle()
            group.start_soon(second)
            await _settle()
            assert promised == []  # the frame and the first's promise leave 10 bytes
            answer.set()  # its 10 bytes leave a frame's room: nothing taken out
            await _until(lambda: promised)
            group.cancel_scope.cancel()  # a call never woken would wait on
        assert promised == [2]

    anyio.run(main)


def test_a_call_past_the_sessions_slots_still_waits_undecided() -> None:
    world = make_world()
    support = world.credential(world.support_chain, world.support)
    recorder, upstream = ListRecorder(), Blocking()
    most = limits.MAX_MCP_CALLS_PER_SESSION

    async def main() -> None:
        async with (
            gate_of(world, upstream, recorder) as gate,
            Client(gate_server(gate, support), mode="legacy", cache=None) as agent,
        ):

            async def look(ident: int) -> None:
                await agent.call_tool("lookup_order", {"order_id": f"o{ident}"})

            async with anyio.create_task_group() as group:
                for ident in range(most + 1):
                    group.start_soon(look, ident)
                with anyio.fail_after(5):
                    while len(recorder.records) < most:
                        await anyio.sleep(0.01)
                await _settle()
                assert len(recorder.records) == most  # the last waits, undecided
                upstream.release.set()
        assert len(recorder.records) == most + 1
        assert upstream.answered == most + 1

    anyio.run(main)
