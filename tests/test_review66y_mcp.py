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

mcp 2: the upstream's process group was ended with the SDK's tree kill, which SIGTERMs the
group, then waits while `killpg(group, 0)` succeeds, up to 2 s, and SIGKILLs it. A dead member
not yet reaped (a zombie: the upstream's child orphaned as the tree kill ended it, its reaper
pid 1, which in a container often reaps late or never) counts as alive: the gate's end waited
out the 2 s for nothing (most of the ~3.5 s from SIGTERM to exit in test_review66c_mcp, over 10
s loaded) and sent a SIGKILL to a group of the dead. Now the group is over once every member
left is a zombie (Linux: /proc; elsewhere the SDK's probe), the SIGKILL kept for the living.

mcp 3: the other second of that exit: a gate's kept job (the unanswered record of a call
cancelled as it was decided, `McpGate`'s refusal) whose caller left while it was still queued
was marked running when a thread took it, over its caller's leaving: run to its end, it was
counted as a result its caller would take, which no caller ever did. The worker stayed busy
for good, so every `McpGate.close` after it waited out MCP_GATE_DRAIN_SECONDS and answered
that the records under way were not all written, though they were. Now a left job stays left.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import anyio.abc
import anyio.to_thread
import pytest

from troth.integrations.mcp import upstream
from troth.integrations.mcp.agent_stdio import on_sigterm
from troth.integrations.mcp.worker import GateWorker


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


class _Leader:
    """An upstream's process as the tree kill sees it: its pid, its exit code once reaped."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen, self.pid = popen, popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()


anyio.abc.Process.register(_Leader)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="zombies seen in /proc")
def test_a_group_of_the_dead_is_over_without_its_sigkill(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[int, int]] = []
    killpg = os.killpg

    def recorded(pgid: int, signum: int) -> None:
        sent.append((pgid, signum))
        killpg(pgid, signum)

    async def main() -> None:
        # the upstream: a group of its own (in this session, so a member can join it)
        leader = _Leader(subprocess.Popen(["sleep", "60"], process_group=0))
        # a member that exited, not reaped yet (its parent, this process, waits on it later)
        dead = subprocess.Popen(["true"], process_group=leader.pid)
        try:
            stat = Path(f"/proc/{dead.pid}/stat")
            while stat.read_text().split(")")[-1].split()[0] != "Z":
                await anyio.sleep(0.01)
            monkeypatch.setattr(os, "killpg", recorded)
            with anyio.fail_after(5):
                await upstream._terminate_process_tree(leader)  # type: ignore[arg-type]
        finally:
            monkeypatch.undo()
            dead.wait()
            if leader.returncode is None:
                leader.popen.kill()
            leader.popen.wait()
        assert leader.returncode == -signal.SIGTERM
        assert (leader.pid, signal.SIGKILL) not in sent, "a group of the dead was SIGKILLed"

    anyio.run(main)


def test_a_kept_job_left_while_queued_does_not_hold_the_drain() -> None:
    written: list[str] = []

    async def main() -> None:
        worker = GateWorker(threads=1)
        running, release = threading.Event(), threading.Event()

        def held() -> bool:
            running.set()
            return release.wait(5)

        async def occupy() -> None:
            await worker.run(held)

        async with anyio.create_task_group() as group:
            group.start_soon(occupy)  # the only thread busy: the kept job waits in the queue
            await anyio.to_thread.run_sync(running.wait, 5)
            with anyio.CancelScope() as scope:
                scope.cancel()  # its caller leaves before a thread takes it
                await worker.run(lambda: written.append("unanswered"), keep=True, grace=0.01)
            release.set()
        with anyio.fail_after(5):
            while not written:
                await anyio.sleep(0.01)
        assert await worker.drain(1.0), "the records under way were all written"
        assert worker.busy() == 0

    anyio.run(main)
