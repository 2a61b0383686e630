"""Review 67t of the MCP gate's signals (67n's `on_sigterm`): attacks that broke a promise.

mcp 1: the wakeup pipe closed while still handed out. A program that sets a signal wakeup fd
of its own within the gate's block and puts back the one it found once it is done (the
discipline `signal.set_wakeup_fd` asks for, and trio's), when the block ends first, puts back
the block's pipe, which the block had closed: the put-back failed (EBADF, or ValueError once
a blocking file took the number), or, once the program's next non-blocking socket took the
number (every asyncio connection is one), succeeded, and every signal after wrote a byte into
that connection's stream, as 67n, mcp 2 found of the closed loop's self-pipe. Now the blocks'
pipe is one per process, never closed; a block finding it the wakeup fd (put back) reads it.

mcp 2: the agent's reading end of stdout gone. The terminal closing (SIGHUP) or the agent
dying closes the pipe the gate answers on: the answer to the call under way (the gate's error,
the drain's) failed with EPIPE, which ended `troth mcp gate` and `troth mcp connect` as
"troth: internal error: ExceptionGroup", exit 70, not as their agent's going away (exit 0).
The records were written and the upstream ended. Now a write the agent can no longer read
(EPIPE, ECONNRESET) is its going away: no more of stdin read, no answer waited for.

mcp 4: a program that sets its own SIGTERM (or SIGHUP) handler while the gate serves (a
component started meanwhile) lost it when the gate ended: the handler the signal had before
the block was put back over it, for good (SIGTERM then killed the program at once). Now the
one before is put back only where the block's handler still is.

mcp 3 (strict xfail, left): a program that runs the gate through the Python API and adds then
removes a signal handler of its asyncio loop while the gate serves (`anyio.open_signal_receiver`
for a while) leaves the process with no wakeup fd: asyncio sets -1 as its last handler goes.
A SIGTERM another thread takes then no longer wakes the idle gate (66y, mcp 1). The block
cannot see the change; a fix needs a wakeup the loop's handlers cannot remove.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest

from tests.test_mcp_channels import shop
from tests.test_review66c_mcp import _alive as _sleeping
from tests.test_review67n_mcp import gate_until_called, stuck_upstream, write_a_call
from troth import limits
from troth.clock import SystemClock
from troth.integrations.mcp.agent_stdio import on_sigterm
from troth.node import open_node
from troth.trace.dsse import parse_envelope
from troth.trace.log import open_node_log
from troth.trace.record_decode import decode_payload


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


def test_sighup_with_the_agents_stdout_gone_ends_the_gate_as_its_agents_end_does(
    monkeypatch: pytest.MonkeyPatch, troth_home: Path, tmp_path: Path
) -> None:
    monkeypatch.setattr(limits, "MCP_GATE_DRAIN_SECONDS", 0.2)
    shop(troth_home, SystemClock())
    command, called = stuck_upstream(tmp_path)
    previous = signal.signal(signal.SIGHUP, lambda signum, frame: None)  # never the default
    pid = None
    in_read, in_write = os.pipe()
    out_read, out_write = os.pipe()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(os.fdopen(in_read, "rb", buffering=0)))
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(os.fdopen(out_write, "wb", buffering=0)))
    outcome: list[BaseException | None] = []
    try:
        write_a_call(in_write)

        async def main() -> None:
            nonlocal pid
            with anyio.fail_after(5):
                async with anyio.create_task_group() as group:
                    pid = await gate_until_called(group, troth_home, command, called)
                    os.close(out_read)  # the terminal gone: the gate's stdout broken
                    os.kill(os.getpid(), signal.SIGHUP)

        try:
            anyio.run(main)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)
        assert outcome == [None]  # the gate returned: exit 0, as at its agent's end
        assert pid is not None
        for _ in range(300):
            if not _sleeping(pid):  # the upstream's group ends with it
                break
            time.sleep(0.01)
        assert not _sleeping(pid), "the upstream's child outlived the gate"
    finally:
        signal.signal(signal.SIGHUP, previous)
        os.close(in_write)
        if pid is not None and _sleeping(pid):
            os.kill(pid, signal.SIGKILL)
    with (
        open_node("shop", home=troth_home) as node,
        open_node_log(node, clock=SystemClock()) as log,
    ):
        decided = [decode_payload(parse_envelope(s.envelope).payload) for s in log.records()]
    calls = [r.decision for r in decided if r.tool and r.tool.name == "lookup_order"]
    assert [decision.outcome if decision else None for decision in calls] == [
        "allowed",
        "unanswered",
    ]


@pytest.mark.xfail(
    strict=True,
    reason="67t mcp 3: a host loop's signal handler added and removed within the block leaves "
    "no wakeup fd; a SIGTERM another thread takes does not wake the idle gate",
)
def test_a_host_loops_handler_come_and_gone_leaves_the_idle_gate_wakeable() -> None:
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
            with anyio.open_signal_receiver(signal.SIGUSR1):  # the program's, for a while
                await anyio.sleep(0)

            def kill() -> None:
                time.sleep(0.2)  # the main thread asleep in the selector by then
                signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

            worker = threading.Thread(target=kill)
            timer.start()
            try:
                worker.start()
                await done.wait()
            finally:
                timer.cancel()
                worker.join()

    previous = signal.getsignal(signal.SIGTERM)
    try:
        anyio.run(main)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    assert got[0] == "act", got


def test_a_handler_the_program_sets_within_the_block_is_kept() -> None:
    def host(signum: int, frame: object) -> None:
        pass

    previous = signal.getsignal(signal.SIGTERM)
    try:

        async def main() -> None:
            async with on_sigterm(lambda: None):
                signal.signal(signal.SIGTERM, host)  # the program's, set while the gate serves
                await asyncio.sleep(0)

        asyncio.run(main())
        assert signal.getsignal(signal.SIGTERM) is host
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
