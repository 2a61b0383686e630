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

mcp 3: 66c closes an exited upstream's stdout (held by a child outside its group) after
MCP_UPSTREAM_EXIT_IDLE_SECONDS with nothing to read, but counted them from when the reader began
waiting: after a quiet spell, at once when the group ended. A line that reached the pipe as
the group ended (a member's last write on the tree kill's SIGTERM), the loop yet to read it,
was cut: the stream closed under the waiting read. Now counted from the group's end.

mcp 4: a session ended by cancellation (SIGTERM while the gate waits for its upstream's
handshake, START_TIMEOUT, the node's stop) cancelled the task that ends the upstream's process
group when the upstream exits (review 65v, mcp 1); the SDK's shutdown then closed the upstream's
stdin and, the upstream exiting within its grace, killed nothing: what the upstream had started
in its group (a tool's child, `sleep 600`) outlived the gate, against 66c's promise that SIGTERM
ends the upstream's group. Now the shutdown ends the group whatever ended the session.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import StdioServerParameters
from mcp.shared.message import SessionMessage

from troth.integrations.mcp import upstream
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


_QUIET_THEN_GONE = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", '''
import json, signal, sys, time
def last(signum, frame):
    note = {"jsonrpc": "2.0", "method": "notifications/message",
            "params": {"level": "info", "data": "last words"}}
    sys.stdout.write(json.dumps(note) + "\\\\n")
    sys.stdout.flush()
signal.signal(signal.SIGUSR1, last)
print("", file=sys.stderr, flush=True)
time.sleep(60)
'''], start_new_session=True, stderr=subprocess.PIPE)
child.stderr.readline()  # its handler in place
with open(sys.argv[1], "w") as pid:
    pid.write(str(child.pid))
time.sleep(0.4)  # the gate's reader waits longer than MCP_UPSTREAM_EXIT_IDLE_SECONDS
sys.exit(0)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups")
def test_what_comes_as_the_upstreams_group_ends_is_read_before_the_idle_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mcp 3: the idle close counted from when the reader began waiting, not from the group's
    end. A line that reached the pipe as the group ended (the last write of a member dying on
    the tree kill's SIGTERM, in the loop's next round) was cut at once: the stream closed
    under it before the loop read the pipe. Here a child holding stdout writes right as the
    tree kill returns (the loop held till it has: deterministic); it is read."""
    pid_file = tmp_path / "child.pid"
    real = vars(upstream)["_terminate_process_tree"]  # the SDK's tree kill, as upstream calls it

    async def tree_kill_then_a_write(process: object) -> None:
        await real(process)
        os.kill(int(pid_file.read_text()), signal.SIGUSR1)
        time.sleep(0.2)  # the line in the pipe before the loop goes on

    monkeypatch.setattr(upstream, "_terminate_process_tree", tree_kill_then_a_write)
    server = StdioServerParameters(
        command=sys.executable, args=["-c", _QUIET_THEN_GONE, str(pid_file)]
    )
    got: list[object] = []

    async def main() -> None:
        with anyio.fail_after(5):
            async with upstream.upstream_stdio(server) as (read, _write):
                async for item in read:
                    got.append(item.message if isinstance(item, SessionMessage) else item)

    try:
        anyio.run(main)
    finally:
        if pid_file.exists():
            with suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert [getattr(item, "params", None) for item in got] == [
        {"level": "info", "data": "last words"}
    ]


_STARTS_A_CHILD = """
import subprocess, sys
child = subprocess.Popen(["sleep", "600"], stdout=subprocess.DEVNULL)
open(sys.argv[1], "w").write(str(child.pid))
for _ in sys.stdin:  # answers nothing; exits when its stdin closes
    pass
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_session_ended_by_cancellation_ends_the_upstreams_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcp.os.posix.utilities import terminate_posix_process_tree

    from tests.test_review66c_mcp import _alive

    async def tree_kill(process: Any) -> None:  # the SDK's, its wait for the group shortened:
        await terminate_posix_process_tree(process, 0.1)  # (an orphan's zombie, reaped by pid 1)

    monkeypatch.setattr(upstream, "_terminate_process_tree", tree_kill)
    started = tmp_path / "child.pid"
    server = StdioServerParameters(
        command=sys.executable, args=["-c", _STARTS_A_CHILD, str(started)]
    )
    pid: list[int] = []

    async def main() -> None:
        with anyio.fail_after(5), anyio.CancelScope() as session:
            async with upstream.upstream_stdio(server):
                while not (started.exists() and started.read_text()):
                    await anyio.sleep(0.01)
                pid.append(int(started.read_text()))
                session.cancel()  # as SIGTERM cancels the gate's start (review 66c, mcp 2)
                await anyio.sleep(5)

    try:
        anyio.run(main)
        for _ in range(300):  # the tree kill's SIGTERM, seen
            if not _alive(pid[0]):
                break
            time.sleep(0.01)
        assert not _alive(pid[0]), "what the upstream started outlived its session"
    finally:
        if pid and _alive(pid[0]):
            os.kill(pid[0], signal.SIGKILL)
