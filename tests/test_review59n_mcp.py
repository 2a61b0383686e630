"""Review 59n (a short review of review 59h's room kept for the answers given at once:
troth.integrations.mcp.room).

mcp 1: the promises of `AnswerRoom` are held weakly so that one whose task ends without writing
its answer "all the same lets it go with the task" (the backstop for a request the SDK settles
unanswered after its handler returned). The room came free as the task went, but nothing woke
the calls waiting for it: they waited on until some other frame was taken or answered, and
with the client's answers all read, forever (a stall). The MCP SDK writes the answer of every
handler that returned (its peer's cancel interrupts the handler, and `_Promised.__aexit__` lets
that room go at once), so only this backstop path is concerned. Now a promise gone wakes the
calls waiting for room.
"""

from __future__ import annotations

import gc

import anyio

from tests.test_review58f_mcp import _settle
from troth.integrations.mcp.room import AnswerRoom


def test_a_promise_let_go_with_its_task_wakes_a_call_waiting_for_its_room() -> None:
    room = AnswerRoom(100, 10, 100)
    got: list[str] = []

    async def settled_unanswered(end: anyio.Event) -> None:
        async with room.promised(1):  # its handler returned: the SDK would write its answer
            pass
        await end.wait()
        got.append("ended")  # ... but writes none, and the task ends

    async def call() -> None:
        async with room.promised(2):
            got.append("room")

    async def main() -> None:
        end = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(settled_unanswered, end)
            await _settle()
            tg.start_soon(call)
            await _settle()
            assert got == []  # the room is promised
            end.set()
            await _settle()
            gc.collect()  # whatever still held the ended task's context
            await _settle()
            tg.cancel_scope.cancel()

    anyio.run(main)
    assert got == ["ended", "room"]
