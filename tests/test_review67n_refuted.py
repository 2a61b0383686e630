"""Review 67n of the local MCP gate's lifecycle: attacks that did not break a promise, each
kept as a test of the defence that stopped it.

1. SIGTERM twice (an impatient client, a supervisor and the agent both): `troth mcp connect`
   ends once, as at its agent's end, the second signal a no-op (`AgentStdio.stop` again), and
   SIGTERM's handler is the program's again after it.
2. SIGTERM during the gate's start, its upstream spawned but not yet through the MCP handshake:
   the start is abandoned (`serve_local_gate`'s task group cancelled), the gate returns (exit
   0), and the upstream's process group is ended with the session's shutdown (66p, mcp 4).
3. SIGINT (Ctrl-C) with a call under way at the upstream, which started a child: asyncio's
   runner cancels the gate, whose ends are shielded: the call recorded allowed then
   unanswered (kept work of the gate's threads, written before the trace log closes), the
   upstream's group ended (the child too), then KeyboardInterrupt.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import anyio
import pytest

from tests.test_mcp_channels import shop
from tests.test_review66c_mcp import ROUTE, _agent, _fake_node
from tests.test_review66c_mcp import _alive as _sleeping
from tests.test_review67n_mcp import gate_until_called, stuck_upstream, write_a_call
from troth.clock import SystemClock
from troth.integrations.mcp import connect as connect_module
from troth.integrations.mcp.local import serve_local_gate
from troth.node import open_node
from troth.trace.dsse import parse_envelope
from troth.trace.log import open_node_log
from troth.trace.record_decode import decode_payload


def test_sigterm_twice_ends_connect_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_node(monkeypatch, ends=False)
    got: list[str] = []
    before = signal.signal(signal.SIGTERM, lambda signum, frame: got.append("before"))
    try:
        with _agent(monkeypatch):

            async def main() -> None:
                with anyio.fail_after(3):
                    async with anyio.create_task_group() as group:
                        group.start_soon(
                            connect_module.serve_connect, tmp_path, "agent", "support", ROUTE
                        )
                        await anyio.sleep(0.2)  # serving
                        os.kill(os.getpid(), signal.SIGTERM)
                        os.kill(os.getpid(), signal.SIGTERM)

            anyio.run(main)  # returned: exit 0
        assert got == []
        os.kill(os.getpid(), signal.SIGTERM)  # the program's handler again
        assert got == ["before"]
    finally:
        signal.signal(signal.SIGTERM, before)


_SILENT = """\
import os, sys
with open(sys.argv[1], "w") as out:
    out.write(str(os.getpid()))
sys.stdin.read()  # never answers the handshake; ends when its stdin closes
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_sigterm_during_the_start_ends_the_gate_and_its_upstream(
    troth_home: Path, tmp_path: Path
) -> None:
    shop(troth_home, SystemClock())
    script, spawned = tmp_path / "silent.py", tmp_path / "pid"
    script.write_text(_SILENT)
    command = [sys.executable, str(script), str(spawned)]
    before = signal.signal(signal.SIGTERM, lambda signum, frame: None)  # never the default
    pid = None
    try:

        async def main() -> None:
            nonlocal pid
            with anyio.fail_after(5):
                async with anyio.create_task_group() as group:
                    group.start_soon(serve_local_gate, troth_home, "shop", "support", command)
                    while not (spawned.exists() and spawned.read_text()):
                        await anyio.sleep(0.01)
                    pid = int(spawned.read_text())
                    os.kill(os.getpid(), signal.SIGTERM)

        anyio.run(main)  # the gate returned: exit 0, its start abandoned
        assert pid is not None
        for _ in range(200):
            if not _alive(pid):
                break
            time.sleep(0.01)
        assert not _alive(pid), "the upstream outlived the gate's abandoned start"
    finally:
        signal.signal(signal.SIGTERM, before)
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_sigint_ends_the_gate_its_call_under_way_recorded_and_its_upstream_ended(
    monkeypatch: pytest.MonkeyPatch, troth_home: Path, tmp_path: Path
) -> None:
    shop(troth_home, SystemClock())
    command, called = stuck_upstream(tmp_path)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # asyncio's Runner's
    pid = None
    try:
        with _agent(monkeypatch) as agent:
            write_a_call(agent)

            async def main() -> None:
                nonlocal pid
                with anyio.fail_after(5):
                    async with anyio.create_task_group() as group:
                        pid = await gate_until_called(group, troth_home, command, called)
                        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C
                        await anyio.sleep(5)

            with pytest.raises(KeyboardInterrupt):
                anyio.run(main)
        assert pid is not None
        for _ in range(300):  # the upstream's group ends with it (SIGTERM, then SIGKILL)
            if not _sleeping(pid):
                break
            time.sleep(0.01)
        assert not _sleeping(pid), "the upstream's child outlived the gate"
    finally:
        if pid is not None and _sleeping(pid):
            os.kill(pid, signal.SIGKILL)
    with (
        open_node("shop", home=troth_home) as node,
        open_node_log(node, clock=SystemClock()) as log,
    ):
        decided = [decode_payload(parse_envelope(s.envelope).payload) for s in log.records()]
    calls = [r.decision for r in decided if r.tool and r.tool.name == "lookup_order"]
    outcomes = [decision.outcome if decision else None for decision in calls]
    assert outcomes == ["allowed", "unanswered"]
