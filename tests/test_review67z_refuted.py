"""Review 67z of 67t's MCP signal changes (`agent_stdio`, `on_sigterm`): attacks that did not
break a promise, each kept as a test of the defence that stopped it.

1. A program that puts SIGTERM's default back itself while the gate serves
   (`signal.signal(SIGTERM, SIG_DFL)`): its explicit default is kept when the block ends, not
   overwritten with the handler the signal had before the block (67t, mcp 4's check is on the
   block's own handler, not on "a callable").
2. A forked child (of a program whose block made the process's wakeup pipe) opening a block of
   its own: it makes a pipe of its own, its wakeup fd is not the parent's write end, and the
   SIGTERM it takes writes no byte into the pipe its parent's loop reads.
"""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from troth.integrations.mcp.agent_stdio import on_sigterm


def _peek_wakeup_fd() -> int:
    there = signal.set_wakeup_fd(-1)
    if there != -1:
        signal.set_wakeup_fd(there)
    return there


def test_a_default_the_program_puts_back_within_the_block_is_kept() -> None:
    def before(signum: int, frame: object) -> None:
        pass

    previous = signal.signal(signal.SIGTERM, before)
    try:

        async def main() -> None:
            async with on_sigterm(lambda: None):
                signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the program's explicit choice
                await asyncio.sleep(0)

        asyncio.run(main())
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_forked_childs_block_uses_a_pipe_of_its_own() -> None:
    parent_wakeup: list[int] = []

    async def parent() -> None:
        async with on_sigterm(lambda: None):
            parent_wakeup.append(_peek_wakeup_fd())

    previous = signal.getsignal(signal.SIGTERM)
    try:
        asyncio.run(parent())  # the process's pipe made
        (parent_write,) = parent_wakeup
        assert parent_write != -1
        parent_read = next(
            fd for fd in range(3, 1024) if _is_pipe_pair(fd, parent_write) and fd != parent_write
        )
        pid = os.fork()
        if pid == 0:  # the child: exit 0 only if its block used a pipe of its own
            code = 1
            try:
                got: list[str] = []

                async def child() -> None:
                    done = asyncio.Event()

                    def act() -> None:
                        got.append("act")
                        done.set()

                    async with on_sigterm(act):
                        mine = _peek_wakeup_fd()
                        got.append("own" if mine not in (-1, parent_write) else "parent's")
                        os.kill(os.getpid(), signal.SIGTERM)
                        await asyncio.wait_for(done.wait(), 5)

                asyncio.run(child())
                code = 0 if got == ["own", "act"] else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        os.set_blocking(parent_read, False)
        with pytest.raises(BlockingIOError):  # no byte of the child's signal in the parent's
            os.read(parent_read, 512)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _is_pipe_pair(fd: int, other: int) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == os.readlink(f"/proc/self/fd/{other}")
    except OSError:
        return False
