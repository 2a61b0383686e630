"""Review 66y, MCP ends: attacks on 66p's SIGTERM handling and on 66y's own fixes that did not
work, each a passing test that fails if the defence it names breaks.

1. A member of the upstream's group that ignores SIGTERM (or a zombie beside it) does not make
   the group look over: 66y mcp 2 ends the wait only when no member lives, so the living one
   is still SIGKILLed after FORCE_KILL_TIMEOUT.
   So is a member whose first thread alone ended (a zombie in /proc, its other threads
   running).
2. A host loop that handles signals itself (`add_signal_handler`: its wakeup fd set) keeps its
   wakeup fd through a gate's `on_sigterm` block (66y mcp 1 sets one only while none is), so
   the host's handlers still run after the block.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import anyio
import pytest

from tests.test_review66y_mcp import _Leader
from troth.integrations.mcp import upstream
from troth.integrations.mcp.agent_stdio import on_sigterm

_FIRST_THREAD_GONE = """
import ctypes, signal, threading, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
threading.Thread(target=time.sleep, args=(60,)).start()
print(flush=True)
ctypes.CDLL(None).pthread_exit(None)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="members seen in /proc")
@pytest.mark.parametrize("how", ["ignoring SIGTERM", "its first thread gone"])
def test_a_member_ignoring_sigterm_is_still_killed(
    monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.setattr(upstream, "FORCE_KILL_TIMEOUT", 0.3)  # (the SDK's 2 s, shortened)
    stubborn = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    stubborn += "print(flush=True); time.sleep(60)"
    if how != "ignoring SIGTERM":
        stubborn = _FIRST_THREAD_GONE

    async def main() -> None:
        leader = _Leader(
            subprocess.Popen(
                [sys.executable, "-c", stubborn], stdout=subprocess.PIPE, process_group=0
            )
        )
        dead = subprocess.Popen(["true"], process_group=leader.pid)  # a zombie beside it
        try:
            assert leader.popen.stdout is not None
            leader.popen.stdout.readline()  # its SIGTERM ignored from here
            with anyio.fail_after(5):
                await upstream._terminate_process_tree(leader)  # type: ignore[arg-type]
                while leader.returncode is None:  # (killed: seen ended at once)
                    await anyio.sleep(0.01)
        finally:
            dead.wait()
            if leader.returncode is None:
                leader.popen.kill()
            leader.popen.wait()
        assert leader.popen.returncode == -signal.SIGKILL

    anyio.run(main)


def test_a_host_loops_wakeup_fd_is_left_in_place() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, lambda: None)  # sets the loop's wakeup fd
        try:
            there = signal.set_wakeup_fd(-1)
            signal.set_wakeup_fd(there)
            assert there != -1
            async with on_sigterm(lambda: None):
                await anyio.sleep(0)
            now = signal.set_wakeup_fd(there)
            assert now == there, "the host loop's wakeup fd was replaced or removed"
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)

    previous = signal.getsignal(signal.SIGTERM)
    try:
        anyio.run(main)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
