"""Review 58j, refuted: attacks on the bounds review 58f put on an MCP session (`run_session`'s
relay) and on an upstream spawned over stdio (`upstream_stdio`) that did not work; each test
fails if the defence it names breaks."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
from mcp import Client, StdioServerParameters

from tests.test_review47m_mcp_cancel import Blocking
from tests.test_review58f_mcp import _settle, offer, served
from tests.test_review58j_mcp import HANDSHAKE
from troth import limits
from troth.gates import ListRecorder
from troth.integrations.mcp.frames import McpFrame
from troth.integrations.mcp.gate import UpstreamChanges
from troth.integrations.mcp.upstream import upstream_stdio

BURST = 100


def _answers(frames: list[bytes]) -> list[dict[str, Any]]:
    """The JSON-RPC messages the frames carried (the session's end frame left out)."""
    messages = (McpFrame.decode(frame).message for frame in frames)
    return [json.loads(message) for message in messages if message is not None]


def test_an_honest_burst_of_tool_calls_on_a_slow_way_back_is_answered_whole() -> None:
    """A client that sends BURST tools/call at once while its way back waits (a slow link),
    then takes its answers: the session goes on, and each call is answered exactly once (none
    lost or doubled by the relay, the session not ended as one that takes no answers)."""
    release = anyio.Event()
    frames: list[bytes] = []
    ended: list[bool] = []

    async def way_back(frame: bytes) -> bool:
        await release.wait()
        frames.append(frame)
        return True

    async def main() -> None:
        async with served(way_back, Blocking(), ListRecorder(), release) as (inbound, ending):
            for ident in range(1, BURST + 1):
                await _settle()
                arguments = {"order_id": f"o{ident}", "amount": 1}
                params = {"name": "refund", "arguments": arguments}
                request = {"jsonrpc": "2.0", "id": ident, "method": "tools/call", "params": params}
                assert offer(inbound, request), ident
            release.set()
            with anyio.move_on_after(5):
                while len(frames) <= BURST:
                    await anyio.sleep(0.01)
            ended.extend(ending)

    anyio.run(main)
    assert ended == []
    answered = [a["id"] for a in _answers(frames) if a.get("id") != 0]
    assert sorted(answered) == list(range(1, BURST + 1))
    refunds = [a for a in _answers(frames) if a.get("id") != 0]
    assert all(not a["result"].get("isError") for a in refunds)


def test_notifications_from_a_client_that_takes_no_answers_hold_nothing() -> None:
    """Notifications get no answer, so they never end the session that takes none: the SDK
    starts a task for each (progress, cancellations of requests it never had, unknown ones),
    which ends at once; thousands of them, the way back stuck, hold no task."""
    release = anyio.Event()
    held: list[int] = []

    async def way_back(frame: bytes) -> bool:
        await release.wait()
        return True

    async def main() -> None:
        async with served(way_back, Blocking(), ListRecorder(), release) as (inbound, _):
            await _settle()
            before = len(asyncio.all_tasks())
            for n in range(30 * limits.MAX_MCP_QUEUE):
                kind = n % 3
                if kind == 0:
                    params: dict[str, Any] = {"progressToken": n, "progress": n}
                    note = {"jsonrpc": "2.0", "method": "notifications/progress", "params": params}
                elif kind == 1:
                    params = {"requestId": n, "reason": "no"}
                    note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params}
                else:
                    note = {"jsonrpc": "2.0", "method": "notifications/whatever", "params": {}}
                while not offer(inbound, note):  # the session queue full: let it read
                    await _settle()
            await _settle()
            held.append(len(asyncio.all_tasks()) - before)

    anyio.run(main)
    assert held[0] < limits.MAX_MCP_QUEUE, held


_FLOOD = (
    HANDSHAKE
    + """sys.stdin.readline()  # notifications/initialized
go, counted = sys.argv[2], sys.argv[3]
while not os.path.exists(go):
    time.sleep(0.01)
cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}
for n in range(int(sys.argv[1])):  # one id again and again, each cancelled at once
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": 7, "method": "ping"}) + "\\n")
    sys.stdout.write(json.dumps(cancel) + "\\n")
send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
while not os.path.exists(counted):  # reading nothing until the test has counted
    time.sleep(0.01)
"""
)


def test_an_upstream_flooding_one_id_and_its_cancels_while_the_gate_calls_it_stays_bounded(
    tmp_path: Path,
) -> None:
    """Review 58j, mcp 1 counts the answers to the upstream's requests waiting to be written,
    not the gate's own requests: an upstream that reads nothing, while 2 * MAX_MCP_QUEUE of the
    gate's calls wait to be written to it, floods pings all of one id (a set of ids owed would
    count it once), each cancelled at once (a count the cancels lowered would not bound the
    answers already waiting). The gate's client still holds a bounded number of tasks, and
    reads the upstream to the end (its notification after the flood): no deadlock."""
    go, counted = tmp_path / "go", tmp_path / "counted"
    held: list[int] = []
    calls = 2 * limits.MAX_MCP_QUEUE

    async def main() -> None:
        changes = UpstreamChanges()
        command = ["-c", _FLOOD, "4000", str(go), str(counted)]
        flooding = StdioServerParameters(command=sys.executable, args=command)
        async with Client(upstream_stdio(flooding), cache=None, message_handler=changes) as client:
            before = len(asyncio.all_tasks())
            async with anyio.create_task_group() as tg:
                for n in range(calls):
                    tg.start_soon(client.call_tool, "work", {"pad": "x" * 8192, "n": n})
                await _settle()
                go.touch()
                with anyio.fail_after(20):
                    while changes.count == 0:
                        await anyio.sleep(0.01)
                await _settle()
                held.append(len(asyncio.all_tasks()) - before)
                counted.touch()
                tg.cancel_scope.cancel()

    anyio.run(main)
    assert held[0] < calls + 2 * limits.MAX_MCP_QUEUE, held
