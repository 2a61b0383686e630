"""Review 66y of the MCP gate's SIGTERM handling (66p): attacks that broke a promise, each fixed.

mcp 1: `on_sigterm` (66p) takes SIGTERM with a plain Python handler (`signal.signal`) that
hands it to the loop (`call_soon_threadsafe`). A Python handler runs in the main thread only,
at its next bytecode: the C-level handler wakes a main thread blocked in the loop's selector
only through the wakeup fd (`signal.set_wakeup_fd`), which asyncio sets only for its own
`add_signal_handler`. A SIGTERM the kernel hands to another thread of the gate (its worker
threads, the child watcher; a thread-directed one, or the main thread with a signal already
pending) left an idle gate asleep in its selector: SIGTERM did nothing until something else
woke the loop (an agent's line, a timer), which an idle gate may never have. Now the block
points the wakeup fd at the loop's own self-pipe (as `add_signal_handler` does) while none
is set, and puts back what was there when the last block ends.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import anyio

from troth.integrations.mcp.agent_stdio import on_sigterm


def test_sigterm_taken_by_another_thread_wakes_the_idle_loop() -> None:
    got: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()

        def act() -> None:
            got.append("act")
            done.set()

        def give_up() -> None:  # (the loop woken from outside, after a second)
            got.append("gave up")
            done.set()

        timer = threading.Timer(1.0, loop.call_soon_threadsafe, (give_up,))
        async with on_sigterm(act):
            # the signal reaches a thread other than the main one, the loop idle meanwhile
            def kill() -> None:
                time.sleep(0.2)  # the main thread asleep in the selector by then
                signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

            worker = threading.Thread(target=kill)
            timer.start()
            try:
                worker.start()
                await done.wait()  # no timer in the loop: asleep in its selector
            finally:
                timer.cancel()
                worker.join()

    previous = signal.getsignal(signal.SIGTERM)
    before = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(before)
    try:
        anyio.run(main)
        assert signal.set_wakeup_fd(before) == before  # put back as it was
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    assert got[0] == "act", got
