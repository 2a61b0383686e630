"""Review 58j, mcp: adversarial review of the bounds review 58f put on MCP sessions and on an
upstream spawned over stdio.

mcp 1: `upstream_stdio` (troth.integrations.mcp.upstream) dropped a request of the upstream read
while MAX_MCP_QUEUE messages waited for the upstream to read its stdin, meant for an upstream
that floods requests and reads none of its answers. But the messages waiting are mostly the
gate's own: the callers' tools/call, of every session, which share the gate's one client of the
upstream (MAX_MCP_CALLS_PER_SESSION each). An upstream that reads all it is sent, busy for a
moment with one call while the gate's callers sent it MAX_MCP_QUEUE more (one member's eight
sessions are enough), had the request it sent then dropped, unanswered: a ping, or a sampling,
roots or elicitation request that the gate's client refuses, whose refusal the upstream's tool
waits for; the gate's client has no timeout, so the caller's tools/call waited for ever, its
call slot held, and the log said the upstream "reads none of what is sent to it". Now only the
upstream's own requests count: one is dropped while MAX_MCP_QUEUE answers to its requests wait
to be written (review 58f's flood still bounded: tests/test_review58f_mcp.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import anyio.lowlevel
from mcp import Client, StdioServerParameters

from tests.support.mcp_orders import text
from tests.test_review58f_mcp import _FLOODING
from troth import limits
from troth.integrations.mcp.upstream import upstream_stdio

CALLS = 3 * limits.MAX_MCP_QUEUE
PAD = "x" * 8192  # a few calls fill the pipe: the others wait to be written
HANDSHAKE = _FLOODING[: _FLOODING.index("sys.stdin.readline()  # notifications/initialized")]
"""An upstream's start over stdio (review 58f's): imports, `send`, the legacy handshake."""
_BUSY = (
    HANDSHAKE
    + """
def answer(ident, said):
    content = [{"type": "text", "text": said}]
    send({"jsonrpc": "2.0", "id": ident, "result": {"content": content, "isError": False}})
held, pong = None, False
for line in sys.stdin:
    message = json.loads(line)
    if message.get("id") == "its-ping":
        pong = "result" in message
    elif message.get("method") == "tools/list":
        send({"jsonrpc": "2.0", "id": message["id"], "result": {"tools": []}})
    elif message.get("method") != "tools/call":
        continue
    elif held is None:  # busy with this one: reads nothing until the test's calls wait
        held = message["id"]
        while not os.path.exists(sys.argv[1]):
            time.sleep(0.01)
        send({"jsonrpc": "2.0", "id": "its-ping", "method": "ping"})  # then reads all
    elif message["params"]["name"] == "probe":  # sent once every other call was answered
        answer(held, "pong" if pong else "no pong")
        answer(message["id"], "probe")
    else:
        answer(message["id"], "ok")
"""
)


def test_a_busy_upstream_that_reads_everything_has_its_request_answered(tmp_path: Path) -> None:
    """The upstream holds its first call, reads nothing while CALLS more wait to be written to
    it, then pings the gate's client and reads every line: the pong comes (in line after the
    calls that waited), and the first call is answered "pong" once the probe after them is
    read. Before: the ping was dropped, the first call answered "no pong" (in the gate: a
    tools/call whose upstream waits for the answer waited for ever)."""
    go = tmp_path / "go"
    said: dict[str, str] = {}

    async def main() -> None:
        busy = StdioServerParameters(command=sys.executable, args=["-c", _BUSY, str(go)])
        async with Client(upstream_stdio(busy), cache=None) as client:

            async def call(name: str, arguments: dict[str, str]) -> None:
                said[name] = text(await client.call_tool(name, arguments))

            with anyio.fail_after(20):
                async with anyio.create_task_group() as first:
                    first.start_soon(call, "first", {})
                    async with anyio.create_task_group() as work:
                        for n in range(CALLS):
                            work.start_soon(call, f"work{n}", {"pad": PAD})
                        for _ in range(4 * CALLS):  # each waits to be written
                            await anyio.lowlevel.checkpoint()
                        go.touch()
                    await call("probe", {})

    anyio.run(main)
    assert said["probe"] == "probe"
    assert sum(said[f"work{n}"] == "ok" for n in range(CALLS)) == CALLS
    assert said["first"] == "pong"
