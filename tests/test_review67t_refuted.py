"""Review 67t of the MCP gate's signals (67n's `on_sigterm`): attacks that did not break a
promise, each kept as a test of the defence that stopped it.

1. A storm of SIGHUPs while the loop reads nothing (the blocks' pipe shrunk to a page, so a
   few thousand fill it): the signal's writes to the full wakeup pipe are dropped, never
   block the process (the pipe's ends are non-blocking), the block acts, ends, and SIGHUP's
   handler is the program's again.
2. Many gate starts and stops in one long-lived program (300 blocks in one loop, 50 loops,
   10 blocks abandoned with their loops closed): no descriptor left behind.
3. The upstream's exec inheriting the wakeup pipe: its ends are not inheritable (PEP 446), a
   child spawned with `close_fds=False` sees neither.
4. A block whose loop is stopped but not closed: the SIGTERM taken meanwhile is held, not
   lost; the block acts once the loop runs again.
5. A block in another thread's loop (nested in time with one of the main thread's): it takes
   no signal, the main thread's block acts, and both signals' handlers are the program's after.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import subprocess
import sys
import threading

from troth.integrations.mcp.agent_stdio import on_sigterm


def _fds() -> set[int]:
    return {int(name) for name in os.listdir(f"/proc/{os.getpid()}/fd")}


def _link(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except FileNotFoundError:  # (the listing's own descriptor)
        return ""


def test_a_storm_of_sighups_on_a_full_wakeup_pipe_does_not_block() -> None:
    def before(signum: int, frame: object) -> None:
        pass

    previous = signal.signal(signal.SIGHUP, before)
    got: list[str] = []
    try:

        async def main() -> None:
            async with on_sigterm(lambda: got.append("act")):
                write = signal.set_wakeup_fd(-1)
                signal.set_wakeup_fd(write, warn_on_full_buffer=False)
                assert write != -1
                fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, 4096)
                for _ in range(6000):  # the loop reads nothing meanwhile: the pipe fills
                    os.kill(os.getpid(), signal.SIGHUP)
                await asyncio.sleep(0.05)

        asyncio.run(main())
        assert got
        assert set(got) == {"act"}
        assert signal.getsignal(signal.SIGHUP) is before
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_many_blocks_in_one_program_leave_no_descriptor() -> None:
    previous = signal.getsignal(signal.SIGTERM)

    async def blocks(n: int) -> None:
        for _ in range(n):
            async with on_sigterm(lambda: None):
                await asyncio.sleep(0)

    async def gate() -> None:
        async with on_sigterm(lambda: None):
            await asyncio.sleep(3600)

    try:
        asyncio.run(blocks(1))  # (the process's pipe made once)
        there = _fds()
        asyncio.run(blocks(300))
        for _ in range(50):
            asyncio.run(blocks(1))
        for _ in range(10):  # abandoned: the loop closed, the block never ended
            loop = asyncio.new_event_loop()
            task = loop.create_task(gate())
            loop.run_until_complete(asyncio.sleep(0.01))
            assert not task.done()
            loop.close()
        asyncio.run(blocks(1))  # (the last abandoned one ended here)
        assert _fds() <= there
        assert signal.getsignal(signal.SIGTERM) is previous
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_the_wakeup_pipe_is_not_inherited_by_an_exec() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    seen: list[str] = []

    async def main() -> None:
        async with on_sigterm(lambda: None):
            write = signal.set_wakeup_fd(-1)
            signal.set_wakeup_fd(write, warn_on_full_buffer=False)
            pipe = os.readlink(f"/proc/self/fd/{write}")
            ends = sorted(fd for fd in _fds() if _link(fd) == pipe)
            assert len(ends) == 2  # its read end and its write end
            assert not any(os.get_inheritable(fd) for fd in ends)
            probe = (
                "import os, sys; "
                "print([n for n in sys.argv[1:] if os.path.exists('/proc/self/fd/' + n)])"
            )
            out = subprocess.run(
                [sys.executable, "-c", probe, *map(str, ends)],
                close_fds=False,
                capture_output=True,
                text=True,
                check=True,
            )
            seen.append(out.stdout.strip())

    try:
        asyncio.run(main())
        assert seen == ["[]"]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_sigterm_to_a_stopped_loops_block_is_held_until_it_runs() -> None:
    def before(signum: int, frame: object) -> None:
        got.append("before")

    previous = signal.signal(signal.SIGTERM, before)
    got: list[str] = []

    async def gate() -> None:
        async with on_sigterm(lambda: got.append("act")):
            await asyncio.sleep(3600)

    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(gate())
        loop.run_until_complete(asyncio.sleep(0.01))  # in the block; the loop stops
        os.kill(os.getpid(), signal.SIGTERM)
        assert got == []  # held: the loop runs no callback while stopped
        loop.run_until_complete(asyncio.sleep(0.01))
        assert got == ["act"]
        task.cancel()
        loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
        assert signal.getsignal(signal.SIGTERM) is before
    finally:
        loop.close()
        signal.signal(signal.SIGTERM, previous)


def test_a_block_in_another_threads_loop_takes_no_signal() -> None:
    def before(signum: int, frame: object) -> None:
        got.append("before")

    previous = {n: signal.signal(n, before) for n in (signal.SIGTERM, signal.SIGHUP)}
    got: list[str] = []
    inside, leave = threading.Event(), threading.Event()

    async def other() -> None:
        async with on_sigterm(lambda: got.append("other")):
            inside.set()
            await asyncio.to_thread(leave.wait, 2)

    async def main() -> None:
        async with on_sigterm(lambda: got.append("main")):
            worker = threading.Thread(target=asyncio.run, args=(other(),))
            worker.start()
            try:
                await asyncio.to_thread(inside.wait, 2)
                os.kill(os.getpid(), signal.SIGTERM)
                await asyncio.sleep(0.02)
            finally:
                leave.set()
                await asyncio.to_thread(worker.join)

    try:
        asyncio.run(main())
        assert got == ["main"]
        assert all(signal.getsignal(n) is before for n in previous)
    finally:
        for n, handler in previous.items():
            signal.signal(n, handler)
