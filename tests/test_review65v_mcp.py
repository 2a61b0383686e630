"""Review 65v, mcp: adversarial review of the MCP gate against a hostile upstream and agent.

mcp 1: an upstream spawned over stdio (`upstream_stdio`) that exits mid-call while a child it
spawned (a tool's `cmd &`, in its process group) keeps its stdout open was never seen to end:
the SDK's reader waits for the end of the pipe, which the child holds, and the SDK ends the
process group only at shutdown, and then only when the upstream itself does not exit. So the
call under way waited for ever (its caller's call slot held, the call recorded allowed only),
every later call was written to a pipe nobody read, and the child outlived the gate. Now the
upstream's exit ends its process group (the SDK's tree kill): the pipes close once what was
written is read, the call is answered with the gate's error and recorded unanswered after its
allowed record, and the child is gone.

Real MCP clients and servers (the SDK's); the upstream is a process over stdio.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from contextlib import suppress
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from tests.support.gates import TOOLS, T, make_world
from tests.test_review58j_mcp import HANDSHAKE
from troth.clock import FixedClock
from troth.gates import ListRecorder, Outcome
from troth.integrations.mcp.gate import DENIED_PREFIX, McpGate, gate_server
from troth.integrations.mcp.upstream import upstream_stdio

_ORPHANING = (
    HANDSHAKE
    + """
import subprocess
schema = json.loads(sys.argv[1])
for line in sys.stdin:
    message = json.loads(line)
    if message.get("method") == "tools/list":
        tools = [{"name": "lookup_order", "inputSchema": schema}]
        send({"jsonrpc": "2.0", "id": message["id"], "result": {"tools": tools}})
    elif message.get("method") == "tools/call":  # a child keeps the pipes; the upstream exits
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        with open(sys.argv[2], "w") as pid:
            pid.write(str(child.pid))
        os._exit(0)
"""
)


def _alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, ended and not reaped yet, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _ends(pid: int) -> bool:
    """Whether process `pid` ends within 5 s (a signal sent it is delivered, and the process
    reaped, a moment later on a busy machine: review 65b2 saw it still running at once)."""
    for _ in range(500):
        if not _alive(pid):
            return True
        time.sleep(0.01)
    return False


def call_as_the_upstream_exits(
    tmp_path: Path, script: str, *, within: float = 10
) -> tuple[list[MCPError], list[Outcome], int]:
    """A call through the gate to upstream `script`, which starts a child (its pid written to
    the file named by its second argument) and exits: the call's errors (none if it waited
    `within` s), its recorded outcomes and the child's pid (the caller kills it)."""
    world = make_world()
    recorder = ListRecorder()
    point = world.point(world.store(world.bundle()), recorder)
    caller = world.credential(world.support_chain, world.support)
    pid_file = tmp_path / "child.pid"
    schema = json.dumps(TOOLS["lookup_order"])
    errors: list[MCPError] = []
    upstream = StdioServerParameters(
        command=sys.executable, args=["-c", script, schema, str(pid_file)]
    )

    async def main() -> None:
        async with Client(upstream_stdio(upstream), cache=None) as client:
            gate = McpGate(point, client, clock=FixedClock(T + 10))
            async with Client(gate_server(gate, caller), mode="legacy", cache=None) as agent:
                with anyio.move_on_after(within):
                    try:
                        await agent.call_tool("lookup_order", {"order_id": "o1"})
                    except MCPError as exc:
                        errors.append(exc)

    try:
        anyio.run(main)
    finally:
        pid = int(pid_file.read_text()) if pid_file.exists() else 0
    return errors, [r.decision.outcome for r in recorder.records], pid


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_an_upstream_exiting_mid_call_with_a_child_holding_its_pipes_fails_the_call(
    tmp_path: Path,
) -> None:
    pid = 0
    try:
        errors, outcomes, pid = call_as_the_upstream_exits(tmp_path, _ORPHANING)
        assert errors[0].error.message.startswith(DENIED_PREFIX + "the upstream failed the call")
        assert outcomes == [Outcome.ALLOWED, Outcome.UNANSWERED]
        assert _ends(pid)
    finally:
        if pid:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
