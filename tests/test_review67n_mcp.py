"""Review 67n of the local MCP gate's lifecycle (66c/66p/66y): attacks that broke a promise.

mcp 1: SIGHUP kept its default. A terminal closing (the gate run by hand, or an agent in a
terminal session, its session leader gone) sends SIGHUP to the gate, which died at once: its
upstream runs in a session of its own (the MCP SDK's spawn), so it and what it started were
left running, and the call under way was never recorded unanswered, as SIGTERM did before
66c, mcp 2. Now SIGHUP ends `troth mcp gate` and `troth mcp connect` as SIGTERM does (the agent
read no more, the requests read answered, the records written, the upstream's group ended),
unless SIGHUP is ignored when the block begins (`nohup`: it stays ignored); the handler it had
is restored when the last block ends.

mcp 2: a block abandoned (a program closing its asyncio loop while the gate's task was still
in the block: the block never ends) left SIGTERM and SIGHUP taken by the gate's handler, which
handed them to the closed loop: they did nothing for good, the program's own handler never
called again. And the signal wakeup fd stayed on the number of the closed loop's self-pipe
(66y, mcp 1): the program's next file took that number, and each signal wrote a byte into the
file. Now the wakeup fd is a pipe of the blocks' own (the loop reads it), never closed while it
is the wakeup fd, and the next signal ends an abandoned block: the last gone, the signal goes
to the handler the program had (its default: the process ends).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import anyio
import pytest

from tests.support.gates import TOOLS
from tests.test_mcp_channels import shop
from tests.test_review66c_mcp import _STUCK, ROUTE, _agent, _fake_node, _line
from tests.test_review66c_mcp import _alive as _sleeping
from troth import limits
from troth.clock import SystemClock
from troth.integrations.mcp import connect as connect_module
from troth.integrations.mcp.agent_stdio import on_sigterm
from troth.integrations.mcp.local import serve_local_gate
from troth.node import open_node
from troth.trace.dsse import parse_envelope
from troth.trace.log import open_node_log
from troth.trace.record_decode import decode_payload


def stuck_upstream(tmp_path: Path) -> tuple[list[str], Path]:
    """An upstream whose lookup_order call never answers (`_STUCK`) and the file it writes its
    pid to once the call is at it."""
    script, called = tmp_path / "stuck.py", tmp_path / "called"
    script.write_text(_STUCK)
    return [sys.executable, str(script), json.dumps(TOOLS["lookup_order"]), str(called)], called


def write_a_call(fd: int) -> None:
    """Writes to `fd`, the agent's end, an MCP opening and a tools/call of lookup_order (id 2)."""
    hello = {"protocolVersion": "2025-06-18", "capabilities": {}}
    hello["clientInfo"] = {"name": "agent", "version": "1"}
    call = {"name": "lookup_order", "arguments": {"order_id": "o1"}}
    for message in (
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call},
    ):
        os.write(fd, _line(message))


async def gate_until_called(
    group: anyio.abc.TaskGroup, troth_home: Path, command: list[str], called: Path
) -> int:
    """Starts shop's local gate for support over `command` in `group`; the upstream's pid once
    the call is at it."""
    group.start_soon(serve_local_gate, troth_home, "shop", "support", command)
    while not (called.exists() and called.read_text()):
        await anyio.sleep(0.01)
    return int(called.read_text())


def test_sighup_ends_connect_as_its_agents_end_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_node(monkeypatch, ends=False)
    got: list[str] = []

    def before(signum: int, frame: object) -> None:  # never the default: it kills pytest
        got.append("before")

    previous = signal.signal(signal.SIGHUP, before)
    try:
        with _agent(monkeypatch):  # the agent sends nothing and keeps its stdin open

            async def main() -> None:
                with anyio.fail_after(3):
                    async with anyio.create_task_group() as group:
                        group.start_soon(
                            connect_module.serve_connect, tmp_path, "agent", "support", ROUTE
                        )
                        await anyio.sleep(0.2)  # serving
                        os.kill(os.getpid(), signal.SIGHUP)  # the terminal closed

            anyio.run(main)  # connect returned: exit 0, as at its agent's end
        assert signal.getsignal(signal.SIGHUP) is before
        assert got == []  # taken by the block alone
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_sighup_ignored_under_nohup_stays_ignored() -> None:
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        acted: list[str] = []

        async def main() -> None:
            async with on_sigterm(lambda: acted.append("act")):
                assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
                os.kill(os.getpid(), signal.SIGHUP)
                await anyio.sleep(0.05)

        anyio.run(main)
        assert acted == []
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_an_abandoned_block_leaves_signals_and_descriptors_to_the_program(
    tmp_path: Path,
) -> None:
    got: list[str] = []

    def before(signum: int, frame: object) -> None:
        got.append("before")

    previous = signal.signal(signal.SIGTERM, before)
    files: list[int] = []
    try:

        async def gate() -> None:
            async with on_sigterm(lambda: got.append("act")):
                await asyncio.sleep(3600)

        loop = asyncio.new_event_loop()
        task = loop.create_task(gate())
        loop.run_until_complete(asyncio.sleep(0.05))
        assert not task.done()  # in the block
        loop.close()  # the program closes its loop, the gate's task never ended: abandoned
        # the program's files, numbered as the descriptors the loop had
        files = [os.open(tmp_path / f"f{n}", os.O_RDWR | os.O_CREAT) for n in range(6)]
        os.kill(os.getpid(), signal.SIGTERM)
        assert [os.fstat(fd).st_size for fd in files] == [0] * 6  # no signal byte in them
        assert got == ["before"]  # the program's own handler, as before the gate
        assert signal.getsignal(signal.SIGTERM) is before
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.set_wakeup_fd(-1)
        for fd in files:
            os.close(fd)


def test_sighup_ends_the_gate_its_call_under_way_recorded_and_its_upstream_ended(
    monkeypatch: pytest.MonkeyPatch, troth_home: Path, tmp_path: Path
) -> None:
    monkeypatch.setattr(limits, "MCP_GATE_DRAIN_SECONDS", 0.2)  # (the call is never answered)
    shop(troth_home, SystemClock())
    command, called = stuck_upstream(tmp_path)
    previous = signal.signal(signal.SIGHUP, lambda signum, frame: None)  # never the default
    pid = None
    try:
        with _agent(monkeypatch) as agent:
            write_a_call(agent)

            async def main() -> None:
                nonlocal pid
                with anyio.fail_after(5):
                    async with anyio.create_task_group() as group:
                        pid = await gate_until_called(group, troth_home, command, called)
                        os.kill(os.getpid(), signal.SIGHUP)  # the terminal closed

            anyio.run(main)  # the gate returned: exit 0, as at its agent's end
        assert pid is not None
        for _ in range(300):  # the upstream's group ends with it (SIGTERM, then SIGKILL)
            if not _sleeping(pid):
                break
            time.sleep(0.01)
        assert not _sleeping(pid), "the upstream's child outlived the gate"
    finally:
        signal.signal(signal.SIGHUP, previous)
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
