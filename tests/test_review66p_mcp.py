"""Review 66p of the MCP ends (66c): attacks that broke a promise, each fixed.

mcp 1: `on_sigterm` took SIGTERM with anyio's signal receiver, which registers the handler in
the asyncio loop (`loop.add_signal_handler`) and removes it at the end, and only then put back
the Python-level handler SIGTERM had. A program that runs the gate through the Python API in a
loop where it handles SIGTERM itself (`loop.add_signal_handler(SIGTERM, shutdown)`, as asyncio
servers do) lost its handler for good once the gate ended: the loop's entry was replaced, then
removed, and what was put back was asyncio's no-op, so every later SIGTERM did nothing at all.

mcp 2: each `on_sigterm` block put back, at its end, the handler SIGTERM had at its start. Two
gates served at once in one program (their blocks overlapping, the first to start ending
first) left the second without SIGTERM handling while it ran (the program's handler put back),
then put back the first block's own handler at the second's end, whose loop and gate were
gone: the program's SIGTERM handling was lost for good. Now the blocks share one handler, put
in place by the first to start and the one before restored when the last ends.
"""

from __future__ import annotations

import asyncio
import os
import signal

import anyio

from troth.integrations.mcp.agent_stdio import on_sigterm


def test_a_host_loops_own_sigterm_handler_survives_the_gates_block() -> None:
    got: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        host = asyncio.Event()

        def shutdown() -> None:  # the embedding program's own SIGTERM handling
            got.append("host")
            host.set()

        loop.add_signal_handler(signal.SIGTERM, shutdown)
        try:
            async with on_sigterm(lambda: got.append("act")):
                await anyio.sleep(0)
            # SIGTERM's default would end this test run: send it only to a handler
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None)
            os.kill(os.getpid(), signal.SIGTERM)
            with anyio.fail_after(1):
                await host.wait()
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    try:
        anyio.run(main)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    assert got == ["host"]


def test_two_overlapping_gates_each_end_on_sigterm_and_restore_the_programs_handler() -> None:
    got: list[str] = []

    def program(signum: int, frame: object) -> None:
        got.append("program")

    async def main() -> None:
        first_open, first_done = anyio.Event(), anyio.Event()
        second_got = anyio.Event()

        def second_act() -> None:
            got.append("second")
            second_got.set()

        async def first() -> None:
            async with on_sigterm(lambda: got.append("first")):
                first_open.set()
                await first_done.wait()

        async with anyio.create_task_group() as group:
            group.start_soon(first)
            await first_open.wait()
            async with on_sigterm(second_act):
                first_done.set()  # the first block ends while the second runs
                await anyio.sleep(0.01)
                os.kill(os.getpid(), signal.SIGTERM)  # the second still handles it
                with anyio.fail_after(1):
                    await second_got.wait()

    previous = signal.signal(signal.SIGTERM, program)
    try:
        anyio.run(main)
        assert signal.getsignal(signal.SIGTERM) is program
        os.kill(os.getpid(), signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert got == ["second", "program"]
