"""Review 65b2, mcp: `troth mcp gate` when its stdio upstream dies after the handshake.

mcp 1: docs/policy.md said an upstream that exits ends the gate with an I/O error, but that
held only at the handshake. An upstream that exited mid-session (here: on a tools/call, which
it never answers) left the gate serving: the call was answered with the gate's error and
recorded unanswered (review 65v, mcp 1), but the gate went on reading its agent's stdin, every
tools/list failing and every allowed call recorded allowed then unanswered, until the agent
went away. (Review 65v's attempt to end it lost the answer to the call under way, and waited
for the agent's next line: the MCP SDK's stdin reader is a thread that cannot be cancelled.)
Now the gate answers the call under way, records it, and ends with the I/O error (exit 4)
without waiting for the agent's next line.

Real processes: the agent is the MCP SDK's client of `troth mcp gate` over its stdio, the
upstream a process over the gate's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from tests.support.gates import TOOLS
from tests.test_mcp_channels import shop, stdio
from tests.test_review58j_mcp import HANDSHAKE
from troth.clock import SystemClock
from troth.integrations.mcp.gate import DENIED_PREFIX
from troth.node import open_node
from troth.trace.dsse import parse_envelope
from troth.trace.log import open_node_log
from troth.trace.record_decode import decode_payload

_DYING = (
    HANDSHAKE
    + """
sys.stdin.readline()  # notifications/initialized
for line in sys.stdin:
    message = json.loads(line)
    if message.get("method") == "tools/list":
        tools = [{"name": "lookup_order", "inputSchema": json.loads(sys.argv[1])}]
        send({"jsonrpc": "2.0", "id": message["id"], "result": {"tools": tools}})
    elif message.get("method") == "tools/call":  # dies with the call unanswered
        os._exit(0)
"""
)


def test_the_local_gate_ends_with_an_io_error_when_its_upstream_dies_mid_session(
    troth_home: Path, tmp_path: Path
) -> None:
    shop(troth_home, SystemClock())
    script, code = tmp_path / "dying.py", tmp_path / "code"
    script.write_text(_DYING)
    upstream = f"{sys.executable} {script} '{json.dumps(TOOLS['lookup_order'])}'"
    # the gate's exit code, written when it ends (the SDK's client keeps its process to itself)
    gate = StdioServerParameters(
        command="/bin/sh",
        args=[
            "-c",
            '"$@" 2>"$0.err"; echo $? >"$0"',
            str(code),
            *(sys.executable, "-m", "troth.cli.main", "mcp", "gate", "--as", "support"),
            *("--upstream", upstream, "--node", "shop"),
        ],
        env=stdio().env,
    )
    answers: list[str] = []

    async def main() -> None:
        async with Client(gate, cache=None) as agent:
            with anyio.fail_after(20), pytest.raises(MCPError) as raised:
                await agent.call_tool("lookup_order", {"order_id": "o1"})
            answers.append(raised.value.error.message)
            with anyio.fail_after(10):  # the gate ends by itself: the agent sends nothing more
                while not code.exists() or not code.read_text():
                    await anyio.sleep(0.02)

    anyio.run(main)
    assert answers[0].startswith(DENIED_PREFIX + "the upstream failed the call")
    assert code.read_text().strip() == "4"
    assert "the upstream MCP server" in (tmp_path / "code.err").read_text()
    with (
        open_node("shop", home=troth_home) as node,
        open_node_log(node, clock=SystemClock()) as log,
    ):
        decided = [decode_payload(parse_envelope(s.envelope).payload) for s in log.records()]
    outcomes = [r.decision for r in decided if r.tool and r.tool.name == "lookup_order"]
    assert len(outcomes) == 2, outcomes  # allowed, then unanswered
