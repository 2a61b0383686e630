"""Review 59o (adversarial review of review 59n's `_Promise.__del__`, troth.integrations.mcp.room).

mcp 1: a promise let go with its task is freed where its last reference goes, most often by the
cyclic garbage collector (59n's own test collects to free it), which runs in whichever thread
allocates when it triggers: a node's worker threads among them. `__del__` then woke the waiting
calls from that thread: the event set there completes their futures off the event loop's
thread (asyncio's `call_soon`, not thread-safe: the loop asleep in its selector is not woken,
and its debug mode refuses it midway, the call's future done and never resumed), so the call
waited on, its room free, until another frame moved: the stall review 59n closed. Fixed: from
another thread the wake is handed to the loop (`call_soon_threadsafe`; trio's `run_sync_soon`).
"""

from __future__ import annotations

import asyncio
import threading

import anyio

from tests.test_review58f_mcp import _settle
from troth.integrations.mcp.room import AnswerRoom, _Promise


def test_a_promise_freed_in_another_thread_wakes_the_event_loop() -> None:
    room = AnswerRoom(200, 10, 100)
    held = [_Promise(room, 1), _Promise(room, 2)]  # the room promised whole
    room._promises.update(held)
    got: list[str] = []
    pokes: list[int] = []

    async def call() -> None:
        async with room.promised(3):
            got.append("room")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        poke = loop._write_to_self  # type: ignore[attr-defined]

        def counted() -> None:  # how a thread wakes a loop asleep in its selector
            pokes.append(1)
            poke()

        loop._write_to_self = counted  # type: ignore[attr-defined]
        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            await _settle()
            assert got == []  # waiting for room
            freeing = threading.Thread(target=held.pop)  # its last reference, in that thread
            freeing.start()
            freeing.join()
            # a loop asleep (no frame moving) wakes only if poked: the call waited on, its
            # room free, as before review 59n
            assert pokes, "the event loop was not woken"
            await _settle()
        assert got == ["room"]

    anyio.run(main)
