"""Review 58f, mcp 1: an MCP session whose client does not take its answers held every request
it went on sending.

`run_session` (troth.integrations.mcp.channel) serves one session of a published MCP server:
what the client sends comes in on a queue of MAX_MCP_QUEUE messages (full: the session is
closed, "fell behind"), and the server's answers go out through the way back, which waits while
the peer reads too slowly (the TCP transport's backpressure: docs/protocols.md, "TCP
transport"). The MCP SDK's server reads every message as it comes and starts a task for each
request, which waits to write its answer once MAX_MCP_QUEUE answers are queued: the inbound
queue never filled, so the session never ended, and each `ping` (or any request the gate
answers at once: review 55s bounded only tools/call and tools/list, the requests that wait in
the gate) held a task and its message for as long as the client kept sending and not reading,
against the module's own rule ("a side whose reader falls that far behind loses its session
rather than growing memory"). Now a session whose client leaves MAX_MCP_QUEUE answers waiting
past the queued ones ends: what it sends next is refused, as from a client that fell behind.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectSendStream
from mcp import Client, StdioServerParameters
from mcp.shared.message import SessionMessage

from tests.support.gates import make_world
from tests.test_review47m_mcp_cancel import Blocking, gate_of
from tests.test_review55s_mcp import raw
from troth import limits
from troth.gates import ListRecorder
from troth.integrations.mcp.channel import new_session, run_session
from troth.integrations.mcp.gate import UpstreamChanges, gate_server
from troth.integrations.mcp.upstream import upstream_stdio

PINGS = 4 * limits.MAX_MCP_QUEUE
HELLO = {
    "protocolVersion": "2025-06-18",
    "capabilities": {},
    "clientInfo": {"name": "agent", "version": "1"},
}


async def _settle() -> None:
    for _ in range(8):
        await anyio.lowlevel.checkpoint()


WayBack = Callable[[bytes], Awaitable[bool]]


@asynccontextmanager
async def served(
    way_back: WayBack, upstream: Blocking, recorder: ListRecorder, release: anyio.Event
) -> AsyncIterator[tuple[MemoryObjectSendStream[Any], list[bool]]]:
    """A session of the support agent with a gate in front of `upstream`, served by
    `run_session` (its answers going out through `way_back`, which may wait for `release`,
    set at the latest on the way out: the session's end frame goes out then), initialized:
    (what the node offers it, `offer`; [True] once it ended)."""
    world = make_world()
    support = world.credential(world.support_chain, world.support)
    ended: list[bool] = []
    async with gate_of(world, upstream, recorder) as gate:
        inbound, read = anyio.create_memory_object_stream[Any](limits.MAX_MCP_QUEUE)
        server = gate_server(gate, support)
        async with anyio.create_task_group() as tg:

            async def serve() -> None:
                await run_session(server, read, new_session(), way_back)
                ended.append(True)

            tg.start_soon(serve)
            offer(inbound, {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": HELLO})
            await _settle()
            offer(inbound, {"jsonrpc": "2.0", "method": "notifications/initialized"})
            try:
                yield inbound, ended
            finally:
                release.set()
                inbound.close()
                tg.cancel_scope.cancel()


def offer(inbound: MemoryObjectSendStream[Any], message: Any) -> bool:
    """`message` offered to the session as the node's `send` offers a frame; False when it is
    refused (the session full, or closed: it ended)."""
    try:
        inbound.send_nowait(message if isinstance(message, SessionMessage) else raw(message))
    except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
        return False
    return True


async def pinged(inbound: MemoryObjectSendStream[Any], count: int) -> list[int]:
    """The pings of `count` sent one by one that the session took (until it refused one)."""
    taken: list[int] = []
    for ident in range(1, count + 1):
        await _settle()
        if not offer(inbound, {"jsonrpc": "2.0", "id": ident, "method": "ping"}):
            break
        taken.append(ident)
    return taken


def _pinged(
    way_back: WayBack, release: anyio.Event, count: int, done: Callable[[list[bool]], bool]
) -> tuple[list[int], list[bool]]:
    """The pings of `count` a session whose answers go out through `way_back` took, and
    whether it ended: after the pings `release` is set and the test waits up to 2 s for
    `done` (told whether the session ended), its client still there."""
    taken: list[int] = []
    ended: list[bool] = []

    async def main() -> None:
        async with served(way_back, Blocking(), ListRecorder(), release) as (inbound, ending):
            taken.extend(await pinged(inbound, count))
            release.set()
            with anyio.move_on_after(2):
                while not done(ending):
                    await anyio.sleep(0.01)
            ended.extend(ending)

    anyio.run(main)
    return taken, ended


def test_a_session_whose_client_takes_no_answers_ends() -> None:
    release = anyio.Event()

    async def way_back(frame: bytes) -> bool:  # a peer that reads (next to) nothing
        await release.wait()  # until the test is done: then the session's end frame goes out
        return True

    taken, ended = _pinged(way_back, release, PINGS, bool)
    # the SDK started every ping it read: the session was refused more only past its bounds
    assert len(taken) < 3 * limits.MAX_MCP_QUEUE + limits.MAX_MCP_CALLS_PER_SESSION, len(taken)
    assert ended == [True]


def test_a_session_whose_client_takes_its_answers_late_goes_on() -> None:
    """The bound is on answers left waiting, not on a slow way back: a client that leaves
    fewer than MAX_MCP_QUEUE answers waiting past the queued ones, then takes them, is served
    every ping, and its session goes on."""
    release = anyio.Event()
    frames: list[bytes] = []
    late = limits.MAX_MCP_QUEUE + limits.MAX_MCP_QUEUE // 2

    async def way_back(frame: bytes) -> bool:
        await release.wait()
        frames.append(frame)
        return True

    taken, ended = _pinged(way_back, release, late, lambda _: len(frames) > late)
    assert len(taken) == late
    assert ended == []
    assert len(frames) == late + 2  # the handshake's answer, every pong, the session's end


FLOOD = 8000
_FLOODING = """
import json, os, sys, time
def send(value):
    sys.stdout.write(json.dumps(value) + "\\n")
    sys.stdout.flush()
while True:  # the handshake (server/discover refused: the legacy one)
    request = json.loads(sys.stdin.readline())
    if request.get("method") == "initialize":
        break
    if "id" in request:
        send({"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32601, "message": "no"}})
result = {
    "protocolVersion": request["params"]["protocolVersion"],
    "capabilities": {"tools": {"listChanged": True}},
    "serverInfo": {"name": "flood", "version": "1"},
}
send({"jsonrpc": "2.0", "id": request["id"], "result": result})
sys.stdin.readline()  # notifications/initialized
for n in range(int(sys.argv[1])):
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": n + 1000, "method": "ping"}) + "\\n")
    if sys.argv[2] == "reads":  # each answer read before the next ping: every one answered
        sys.stdout.flush()
        if json.loads(sys.stdin.readline()) != {"jsonrpc": "2.0", "id": n + 1000, "result": {}}:
            sys.exit(1)
send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
while not os.path.exists(sys.argv[3]):  # reading nothing until the test has counted
    time.sleep(0.01)
"""


def test_an_upstream_that_reads_no_answers_cannot_make_the_gate_hold_its_requests(
    tmp_path: Path,
) -> None:
    """Review 58f, mcp 2: the gate's client of an upstream spawned over stdio answers each of
    its requests (a ping; sampling, roots, elicitation: refused), the SDK starting a task for
    each as it reads it; an upstream that reads nothing of its stdin while it floods requests
    made each wait to write its answer (the pipe full): FLOOD pings held ~5,000 tasks (20,000:
    ~9,000 and some 90 MB), without bound. Its requests are now dropped (logged a few times a
    minute) while MAX_MCP_QUEUE messages wait for it to read them; its answers and
    notifications are read as before."""
    held = _pinging_upstream(tmp_path, FLOOD, "floods")
    assert held < 4 * limits.MAX_MCP_QUEUE, held


def test_an_upstream_that_reads_its_answers_gets_every_one(tmp_path: Path) -> None:
    """The drop is for an upstream that reads nothing: one that reads each answer before its
    next request gets every answer (it exits before its notification otherwise)."""
    _pinging_upstream(tmp_path, 2 * limits.MAX_MCP_QUEUE, "reads")


def _pinging_upstream(tmp_path: Path, pings: int, mode: str) -> int:
    """How many tasks the gate's process held once the gate's client of an upstream that sent
    `pings` pings (`mode`: "floods", reading nothing; "reads", each answer) read its
    notification after them (the upstream still there)."""
    held: list[int] = []
    counted = tmp_path / "counted"

    async def main() -> None:
        changes = UpstreamChanges()
        command = ["-c", _FLOODING, str(pings), mode, str(counted)]
        flooding = StdioServerParameters(command=sys.executable, args=command)
        async with Client(upstream_stdio(flooding), cache=None, message_handler=changes):
            with anyio.fail_after(20):  # the notification after the pings: all were read
                while changes.count == 0:
                    await anyio.sleep(0.01)
            await _settle()
            held.append(len(asyncio.all_tasks()))
            counted.touch()

    anyio.run(main)
    return held[0]
