"""Review 67t of the MCP gate's signals (67n's `on_sigterm`): attacks that broke a promise.

mcp 1: the wakeup pipe closed while still handed out. A program that sets a signal wakeup fd
of its own within the gate's block and puts back the one it found once it is done (the
discipline `signal.set_wakeup_fd` asks for, and trio's), when the block ends first, puts back
the block's pipe, which the block had closed: the put-back failed (EBADF, or ValueError once
a blocking file took the number), or, once the program's next non-blocking socket took the
number (every asyncio connection is one), succeeded, and every signal after wrote a byte into
that connection's stream, as 67n, mcp 2 found of the closed loop's self-pipe. Now the blocks'
pipe is one per process, never closed; a block finding it the wakeup fd (put back) reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket

from troth.integrations.mcp.agent_stdio import on_sigterm


def test_a_wakeup_fd_put_back_after_the_block_is_no_closed_number() -> None:
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    own_read, own_write = os.pipe()  # the program's wakeup pipe
    os.set_blocking(own_write, False)
    found: list[int] = []
    pairs: list[tuple[socket.socket, socket.socket]] = []
    try:

        async def main() -> None:
            async with on_sigterm(lambda: None):
                found.append(signal.set_wakeup_fd(own_write))  # the program takes it
                await asyncio.sleep(0)
            # the block over first; the program still on its own wakeup fd

        asyncio.run(main())
        assert signal.set_wakeup_fd(own_write) == own_write  # left as the program set it
        # the program's next connections (non-blocking, as asyncio's), numbered as it came
        pairs = [socket.socketpair() for _ in range(4)]
        for a, b in pairs:
            a.setblocking(False)
            b.setblocking(False)
        signal.set_wakeup_fd(found[0])  # the program puts back the one it found
        os.kill(os.getpid(), signal.SIGTERM)
        heard = []
        for a, b in pairs:
            for end in (a, b):
                with contextlib.suppress(BlockingIOError):  # (nothing in it)
                    heard.append(end.recv(64))
        assert heard == [], "a signal wrote into the program's connection"
    finally:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGTERM, previous)
        os.close(own_read)
        os.close(own_write)
        for a, b in pairs:
            a.close()
            b.close()
