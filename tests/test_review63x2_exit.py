"""Review 63x2, exit: what was left of the bounded stop (review 63v: a node's stop within
NODE_STOP_SECONDS, the storage and broker threads daemons) so that no stuck call holds the
process's exit.

Exit 1: the served broker's forward pool (troth.node.services.forwards.ForwardPool) ran its
upstream calls on a ThreadPoolExecutor, whose threads the interpreter joins at its exit; its
`close` (the broker's close, in the node's stop) only cancelled the forwards not started. A
forward stuck upstream (an upstream that never answers, a deadline that never fires) held
the process's exit for ever after the bounded stop, and its caller waited for ever, with no
answer. Each forward runs on a daemon thread now; `close` abandons those under way, their
callers answered SecretError UPSTREAM_FAILED at once.

Exit 2: `StoreWorker.submit` (troth.node.worker) took a call under its lock but queued its
ticket after releasing it: a `drain` running in between queued the thread's end first, the
thread ended without taking the call, and its caller waited for ever (a storage call accepted
during the node's stop never ran, nor failed). The ticket is queued under the lock now, so
an accepted call comes before the end and runs.

Exit 3 (fixed by review 64a: troth.integrations.mcp.worker): no node or _api code uses
`asyncio.to_thread` or the loop's default executor, but the MCP gate the node's MCP service
serves judged and recorded each tools/call (`McpGate.call_tool`, `_refuse`) with
`anyio.to_thread.run_sync`, on anyio's worker threads, which are not daemons: a recorder stuck
(the node's trace log signing with an HSM that never answers) held the process's exit for
ever after the node's stop, though the session was cancelled and `asyncio.run` returned. The
gate's calls are judged and recorded on daemon threads of its own now, which a cancelled call
does not wait for.

Shown without real time: the upstream never answers (an event nobody sets); the race is
forced by a queue that lets the drain in at the very moment the ticket is queued.
"""

from __future__ import annotations

import asyncio
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from troth.errors import SecretError, SecretFailure
from troth.node.services.forwards import ForwardPool
from troth.node.worker import StoreWorker

_FORWARD_STUCK_AT_EXIT = """
import asyncio, threading
from troth.errors import SecretError
from troth.node.services.forwards import ForwardPool

async def main():
    pool = ForwardPool()
    running = threading.Event()

    def stuck():  # an upstream that never answers
        running.set()
        threading.Event().wait()

    call = asyncio.ensure_future(pool.run(pool.admit("agent"), stuck))
    while not running.is_set():
        await asyncio.sleep(0.01)
    pool.close()  # the broker's close, in the node's stop
    try:
        await asyncio.wait_for(call, 2)
    except SecretError as exc:
        print(exc.reason.name)
    except TimeoutError:
        print("no answer")
    else:
        print("answered")

asyncio.run(main())
"""


def test_a_forward_stuck_upstream_does_not_hold_the_process_exit(tmp_path: Path) -> None:
    """Exit 1: the pool closed behind a forward stuck upstream, its caller is answered with an
    error and the process still ends."""
    try:
        ended = subprocess.run(
            [sys.executable, "-c", _FORWARD_STUCK_AT_EXIT],
            cwd=tmp_path,
            capture_output=True,
            timeout=60,
            check=False,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the process did not end: a forward's thread held its exit")
    assert ended.returncode == 0, ended.stderr
    assert ended.stdout.strip() == b"UPSTREAM_FAILED"


def test_a_closed_forward_pool_refuses_a_forward_and_frees_its_place() -> None:
    """Exit 1: a forward admitted before the close and run after it is refused (never run),
    its place freed."""
    pool = ForwardPool(total=2, per_agent=1)
    ran: list[int] = []
    slot = pool.admit("agent")
    pool.close()

    async def main() -> None:
        await pool.run(slot, lambda: ran.append(1))

    with pytest.raises(SecretError) as refused:
        asyncio.run(main())
    assert refused.value.reason is SecretFailure.UPSTREAM_FAILED
    assert ran == []
    assert pool.running() == 0


def test_a_forward_abandoned_by_the_close_is_never_answered_as_a_success() -> None:
    """Exit 1: the upstream answering right after the close: the caller had its error at the
    close (before, it waited for the answer); the late answer is dropped, not handed over."""
    pool = ForwardPool()
    running, answer = threading.Event(), threading.Event()

    def upstream() -> str:
        running.set()
        answer.wait(5)
        return "ok"

    async def main() -> None:
        call = asyncio.ensure_future(pool.run(pool.admit("agent"), upstream))
        await asyncio.to_thread(running.wait, 5)
        pool.close()
        answer.set()
        with pytest.raises(SecretError) as failed:
            await call
        assert failed.value.reason is SecretFailure.UPSTREAM_FAILED
        assert pool.running() == 0

    asyncio.run(main())


class _DrainAtPut(queue.SimpleQueue[int | None]):
    """The storage thread's queue, letting a drain in at the moment a call's ticket is queued
    (when nothing keeps it out: the worker's lock free)."""

    def __init__(self, worker: StoreWorker) -> None:
        self.worker = worker
        self.raced = False

    def put(self, item: int | None, block: bool = True, timeout: float | None = None) -> None:
        lock = self.worker._lock
        if item is not None and not self.raced and lock.acquire(blocking=False):
            lock.release()
            self.raced = True
            asyncio.run(self.worker.drain())  # a concurrent drain gets in here
        super().put(item, block, timeout)


def test_a_call_accepted_while_a_drain_runs_still_runs() -> None:
    """Exit 2: a drain comes between a call's acceptance and its queueing; the call runs (or,
    were it refused, its caller would be told), it is never left waiting for ever."""
    worker = StoreWorker("troth-test-store")
    worker._queue = _DrainAtPut(worker)  # (its thread starts with the first call)
    ran = threading.Event()
    future = worker.submit(ran.set)
    asyncio.run(worker.drain())
    assert future.done(), "the accepted call never ran nor failed: its caller waits for ever"
    assert future.exception() is None
    assert ran.is_set()


_GATE_STUCK_AT_EXIT = """
import asyncio, threading
import mcp_types as types
from mcp import Client
from mcp.server import Server
from tests.support.gates import TOOLS, T, make_world
from troth.clock import FixedClock
from troth.gates import ListRecorder
from troth.integrations.mcp.gate import McpGate

entered = threading.Event()

class StuckRecorder(ListRecorder):
    def record(self, record):  # the node's trace log, its signer an HSM that never answers
        entered.set()
        threading.Event().wait()

async def on_list_tools(ctx, params):
    tools = [types.Tool(name=n, input_schema=TOOLS[n]) for n in ("lookup_order", "refund")]
    return types.ListToolsResult(tools=tools)

async def on_call_tool(ctx, params):
    return types.CallToolResult(content=[types.TextContent(type="text", text="o1")])

async def main():
    world = make_world()
    point = world.point(world.store(world.bundle()), StuckRecorder())
    caller = world.credential(world.support_chain, world.support)
    server = Server("orders", on_list_tools=on_list_tools, on_call_tool=on_call_tool)
    async with Client(server, cache=None) as upstream:
        gate = McpGate(point, upstream, clock=FixedClock(T + 10))
        call = asyncio.ensure_future(gate.call_tool(caller, "lookup_order", {"order_id": "o1"}))
        while not entered.is_set():
            await asyncio.sleep(0.01)
        call.cancel()  # the node's stop: the session cancelled
        done, _ = await asyncio.wait([call], timeout=2)
        print("cancelled" if done else "stuck")

asyncio.run(main())
"""


def test_a_gate_call_stuck_in_its_recorder_does_not_hold_the_process_exit(
    tmp_path: Path,
) -> None:
    """Exit 3: the session's call cancelled behind a recorder that never returns, the process
    still ends."""
    root = str(Path(__file__).resolve().parent.parent)
    try:
        ended = subprocess.run(
            [sys.executable, "-c", _GATE_STUCK_AT_EXIT],
            cwd=tmp_path,
            capture_output=True,
            timeout=60,  # (a stuck exit never ends; 8 s ran out in a loaded CI)
            check=False,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([root, *sys.path])},
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the process did not end: an anyio worker thread held its exit")
    assert ended.returncode == 0, ended.stderr
    assert ended.stdout.strip() == b"cancelled"
