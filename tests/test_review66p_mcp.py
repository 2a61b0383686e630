"""Review 66p of the MCP ends (66c): attacks that broke a promise, each fixed.

mcp 1: `on_sigterm` took SIGTERM with anyio's signal receiver, which registers the handler in
the asyncio loop (`loop.add_signal_handler`) and removes it at the end, and only then put back
the Python-level handler SIGTERM had. A program that runs the gate through the Python API in a
loop where it handles SIGTERM itself (`loop.add_signal_handler(SIGTERM, shutdown)`, as asyncio
servers do) lost its handler for good once the gate ended: the loop's entry was replaced, then
removed, and what was put back was asyncio's no-op, so every later SIGTERM did nothing at all.
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
