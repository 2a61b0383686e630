"""Review 63v2, stop: the bounded node stop of review 63v (troth.node.runtime's StopBudget)
against the trace client's close (troth.node.services.trace.NodeTraces.close).

Stop 1: the trace client's stage is the third of a node's stop; its share of
NODE_STOP_SECONDS is what the upkeep tasks and the services left (an MCP session's close alone
may take MCP_CLOSE_SECONDS = 3 s of 8, leaving the trace client 3 s) while its close flushes
for up to 5 s to a trace service. Past its share the stage is cancelled, and
`NodeTraces.close` was cut in its flush: the client's `stop` never ran, so its pump ran on
after the node stopped (sending through closed channels, its storage calls refused, an ERROR
each backoff, for the life of the event loop), the outbox stayed claimed (another process, or
the node started again in this process, could not send it) and the node's trace log was never
closed. The client is stopped and the log closed however the close ends now.

Stop 2: the MCP service's close (review 63v, stop 3) waits for its sessions within
MCP_CLOSE_SECONDS (3 s) and only then cancels those left; its stage's share is what the
upkeep tasks left (they may take UPKEEP_STOP_SECONDS, 5 s of 8, leaving the services 0.5 s).
Cut short there, the close never cancelled them: sessions stuck in an upstream call ran on
after the node stopped (their decisions refused by a stopped storage thread, the upstream
process held). A close cancelled cancels its sessions now, then goes on being cancelled.

Stop 3: review 63v, stop 2 made the storage thread a daemon, so a call stuck in it (an HSM
that never answers) no longer holds the process's exit; the broker's own thread, where its
vault calls run (`BrokerService._run`: the secret broker's HSM-sealed data keys), was still a
ThreadPoolExecutor's, joined at the interpreter's exit: a broker call stuck there held `troth
node serve`'s exit for ever after its bounded stop (`troth node stop` SIGKILLed it). It runs on
a daemon thread now (a `StoreWorker` of its own), abandoned by the close.

Shown without real time: the trace service never answers (an event the test holds).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest

from troth.clock import FixedClock
from troth.node.node import Node, init_node, open_node
from troth.node.runtime import NodeRuntime
from troth.node.services.trace import NodeTraces, TraceClient
from troth.trace.batcher import Batcher


class _Outbox:
    """A batcher whose one record is never answered; `close` noted."""

    batch_records = 10
    head_known = False  # the pump asks the trace service first (it never answers)
    in_flight = None

    def __init__(self) -> None:
        self.closed = False

    def pending(self) -> int:
        return 1

    def queued(self) -> int:
        return 1

    def agent(self, now: int) -> str:
        return "agent"

    def claim(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


def test_a_trace_client_close_cut_short_still_stops_its_pump_and_lets_the_outbox_go() -> None:
    """Stop 1: the close is cancelled (its stage past its share) during its flush; the pump
    ends and the outbox is let go all the same."""
    outbox = _Outbox()
    never = asyncio.Event()

    async def send(method: str, body: Any) -> Any:
        await never.wait()

    async def main() -> TraceClient:
        client = TraceClient(send, cast(Batcher, outbox), clock=FixedClock(1_000), flush_seconds=0)
        client.recorded = 1
        traces = NodeTraces(cast(Node, None), clock=FixedClock(1_000))
        traces._client = client
        closing = asyncio.ensure_future(traces.close())
        for _ in range(5):  # the flush under way, the pump waiting on the trace service
            await asyncio.sleep(0)
        assert not closing.done()
        closing.cancel()  # the stop's budget: the stage past its share
        with contextlib.suppress(asyncio.CancelledError):
            await closing
        return client

    client = asyncio.run(main())
    assert outbox.closed, "the outbox is let go for the next sender"
    assert client._task is None, "the pump is stopped"


class _StuckSession:
    """What the MCP service's close sees of a session: its inbound stream and its task."""

    def __init__(self, inbound: Any, task: asyncio.Task[Any]) -> None:
        self.inbound = inbound
        self.task = task


def test_an_mcp_close_cut_short_cancels_its_sessions(tmp_path: Path) -> None:
    """Stop 2: the close is cancelled (its stage past its share) while it waits for sessions
    stuck in an upstream call; they are cancelled with it, not left running."""
    import anyio

    from tests.support.mcp_orders import orders_server
    from troth.node.services.mcp import publish_upstream

    init_node("n", home=tmp_path)

    async def main() -> list[asyncio.Task[Any]]:
        stuck: list[asyncio.Task[Any]] = []
        with open_node("n", home=tmp_path) as node:
            runtime = NodeRuntime(node)
            await runtime.start(None)
            try:
                await publish_upstream(runtime, "orders", orders_server())
                service: Any = runtime.host.services["mcp.orders"]
                for n in range(3):
                    inbound, _ = anyio.create_memory_object_stream[Any](1)
                    task = asyncio.create_task(asyncio.Event().wait())
                    stuck.append(task)
                    service.sessions[("channel", bytes([n]))] = _StuckSession(inbound, task)
                closing = asyncio.create_task(service.close())
                for _ in range(5):
                    await asyncio.sleep(0)
                closing.cancel()  # the stop's budget: the services' stage past its share
                with contextlib.suppress(asyncio.CancelledError):
                    await closing
                await asyncio.sleep(0)
                return [task for task in stuck if not task.done()]
            finally:
                for task in stuck:  # (ended for the node's stop, had the close left them)
                    task.cancel()
                await runtime.stop()

    assert asyncio.run(main()) == [], "the sessions left running after the close"


_BROKER_STUCK_AT_EXIT = """
import asyncio, sys, threading
from types import SimpleNamespace
from troth.node.services.broker import BrokerService

async def main():
    trust = SimpleNamespace(feeds={}, feed_hooks=[], own_authorities=None, hosted=None)
    policies = SimpleNamespace(decision_point=lambda: None, reload=lambda now: None)
    node = SimpleNamespace(db=None, name="n")
    clock = SimpleNamespace(now=lambda: 1_000)
    service = BrokerService(node, trust, clock, policies=policies)
    running = threading.Event()

    def stuck():  # a vault call that never answers
        running.set()
        threading.Event().wait()

    call = asyncio.ensure_future(service._run(stuck))
    await asyncio.to_thread(running.wait, 5)
    try:
        await asyncio.wait_for(service.close(), 0.05)  # the node's stop past its share
    except TimeoutError:
        print("abandoned")
    call.cancel()

asyncio.run(main())
"""


def test_a_stuck_broker_call_does_not_hold_the_process_exit(tmp_path: Path) -> None:
    """Stop 3: the broker's close abandoned behind a stuck call, the process still ends."""
    try:
        ended = subprocess.run(
            [sys.executable, "-c", _BROKER_STUCK_AT_EXIT],
            cwd=tmp_path,
            capture_output=True,
            timeout=20,
            check=False,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the process did not end: the broker's thread held its exit")
    assert ended.returncode == 0, ended.stderr
    assert ended.stdout.strip() == b"abandoned"
