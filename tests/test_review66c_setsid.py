"""Review 66c, mcp 3: an upstream that exits mid-call while a child it put in a session of its
own (`setsid`, a daemon) holds its stdout.

Review 65v ended the upstream's process group when it exits, so a child in the group cannot
hold the pipe; a child that left the group is out of the tree kill's reach (by design: it is
not ours to kill). But it still held the upstream's stdout, and the gate's reader waited for the
end of that pipe: the call under way waited for ever (recorded allowed only), as before 65v.
Now the upstream's exit ends its session once its group is ended: the reader stops at the end
of what was written, the call is answered with the gate's error and recorded unanswered, and
the child is left alone (it is not killed: it left the group).

Real MCP clients and servers (the SDK's); the upstream is a process over stdio.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from contextlib import suppress
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from tests.support.gates import TOOLS, T, make_world
from tests.test_review58j_mcp import HANDSHAKE
from tests.test_review65v_mcp import _alive
from troth.clock import FixedClock
from troth.gates import ListRecorder, Outcome
from troth.integrations.mcp.gate import DENIED_PREFIX, McpGate, gate_server
from troth.integrations.mcp.upstream import upstream_stdio

_DAEMONIZING = (
    HANDSHAKE
    + """
import subprocess
schema = json.loads(sys.argv[1])
for line in sys.stdin:
    message = json.loads(line)
    if message.get("method") == "tools/list":
        tools = [{"name": "lookup_order", "inputSchema": schema}]
        send({"jsonrpc": "2.0", "id": message["id"], "result": {"tools": tools}})
    elif message.get("method") == "tools/call":  # a child in a session of its own keeps stdout
        child = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
        )
        with open(sys.argv[2], "w") as pid:
            pid.write(str(child.pid))
        os._exit(0)
"""
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_an_upstream_exiting_mid_call_with_a_setsid_child_holding_stdout_fails_the_call(
    tmp_path: Path,
) -> None:
    world = make_world()
    recorder = ListRecorder()
    point = world.point(world.store(world.bundle()), recorder)
    caller = world.credential(world.support_chain, world.support)
    pid_file = tmp_path / "child.pid"
    schema = json.dumps(TOOLS["lookup_order"])
    errors: list[MCPError] = []
    upstream = StdioServerParameters(
        command=sys.executable, args=["-c", _DAEMONIZING, schema, str(pid_file)]
    )

    async def main() -> None:
        async with Client(upstream_stdio(upstream), cache=None) as client:
            gate = McpGate(point, client, clock=FixedClock(T + 10))
            async with Client(gate_server(gate, caller), mode="legacy", cache=None) as agent:
                with anyio.move_on_after(5):
                    try:
                        await agent.call_tool("lookup_order", {"order_id": "o1"})
                    except MCPError as exc:
                        errors.append(exc)

    try:
        anyio.run(main)
        assert errors, "the call waited for a pipe a child outside the group held"
        assert errors[0].error.message.startswith(DENIED_PREFIX + "the upstream failed the call")
        assert [r.decision.outcome for r in recorder.records] == [
            Outcome.ALLOWED,
            Outcome.UNANSWERED,
        ]
        assert _alive(int(pid_file.read_text()))  # not ours to kill: it left the group
    finally:
        with suppress(FileNotFoundError, ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
