"""Review 63v, stop: a node's stop is bounded (troth.node.runtime, troth.node.to_the_end,
troth.node.worker, troth.node.services.mcp, troth.node.links, troth.node.services.policy).

Stop 1: `NodeRuntime.stop` awaited each stage to its end: a service's close that never returned
(a caller's own service, the broker's close behind a stuck HSM call) held the stop for ever, so
`serve` never returned (`troth node stop` SIGKILLed the node after STOP_TIMEOUT: the trace
client never delivered what it held, the channels and the storage thread were never closed) and
an in-process `Node.close` hung. Every stage has its share of NODE_STOP_SECONDS now: one past
it is abandoned (cancelled, left) with an ERROR naming it, and the stages after it still run.

Stop 2: the storage stage waited for the storage thread to finish its queue: one call stuck (an
HSM call that never answers) held the stop for ever, and the writes queued behind it ran
whenever it came back, after the node's stop (node.db closed under them). Past its share the
stage is abandoned: the calls the thread has not taken are dropped (never run: no half-written
state; each call is one transaction), the one under way is left to its thread, a daemon thread
that no longer holds the process's exit.

Stop 3: the MCP service's close waited up to 10 s for each session, one after another (N
sessions stuck in an upstream call: N x 10 s), never cancelled them, and swallowed the
CancelledError of whoever stopped it. Its sessions are waited for together now, within
MCP_CLOSE_SECONDS, then cancelled; a cancellation of the close goes on.

Stop 4: `Links.stop` and `PolicyService.close` swallowed a CancelledError aimed at them while
they waited for their tasks: a bounded stop could not cut them short. It goes on now.

Stop 5: a service whose start failed is closed by `NodeRuntime.start` to its end, however
often the start is cancelled (review 63o, lifecycle 1): a close that never returned (the broker's
behind the stuck HSM call its start failed on) held the start, and `troth node start`, for ever,
SIGTERM and all. It is bounded as a stop's stage now (NODE_STOP_SECONDS), the start's own error
raised after it.

Shown without real time: the hangs are events the test holds, the limits patched small.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from troth.node import runtime as runtime_module
from troth.node import to_the_end
from troth.node.links import Link, Links
from troth.node.node import init_node, open_node
from troth.node.runtime import NodeRuntime
from troth.node.services.base import Method

GUARD = 1.5  # seconds a bounded stop gets in these tests before it counts as hung


class _Hangs:
    """A service whose close never returns (until `release`)."""

    oneway: Method | None = None

    def __init__(self, name: str) -> None:
        self.name = name
        self.methods: Mapping[str, Method] = {}
        self.release = asyncio.Event()
        self.closing = asyncio.Event()

    async def maintain(self, now: int) -> None:
        return None

    def status(self) -> dict[str, Any]:
        return {}

    async def close(self) -> None:
        self.closing.set()
        await self.release.wait()


@pytest.fixture
def small_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(to_the_end, "NODE_STOP_SECONDS", 0.35, raising=False)
    monkeypatch.setattr(to_the_end, "NODE_STOP_RESERVE_SECONDS", 0.04, raising=False)
    monkeypatch.setattr(runtime_module, "UPKEEP_STOP_SECONDS", 0.05)


def test_a_close_that_never_returns_is_abandoned_and_the_stop_goes_on(
    tmp_path: Path, small_bound: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Stop 1: a service's close hangs; the stop returns, names it, and the stages after it
    ran (the TCP listener is closed: its port takes a new listener)."""
    init_node("n", home=tmp_path)
    stuck = _Hangs("stuck")

    async def main() -> tuple[str, int]:
        with open_node("n", home=tmp_path) as node:
            runtime = NodeRuntime(node)
            await runtime.start(("127.0.0.1", 0))
            runtime.add_service(stuck)
            listening = runtime.listening
            assert listening is not None
            await asyncio.wait_for(runtime.stop(), GUARD)
            assert stuck.closing.is_set()
            return listening

    with caplog.at_level(logging.ERROR, logger="troth.node"):
        host, port = asyncio.run(main())
    abandoned = [r for r in caplog.records if r.levelno == logging.ERROR and "stuck" in r.message]
    assert abandoned, "the stage past its bound is named in an ERROR"

    async def relisten() -> None:  # the listener was closed: its port is free again
        server = await asyncio.start_server(lambda r, w: None, host, port)
        server.close()

    asyncio.run(relisten())


class _FailsToStart(_Hangs):
    """A service whose start fails and whose close then never returns."""

    async def start(self) -> None:
        raise OSError("the HSM is gone")


def test_a_failed_starts_close_that_never_returns_is_abandoned(
    tmp_path: Path, small_bound: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stop 5: the start's error is raised once the close's share ran out."""
    from troth.node.composition import compose as composed

    init_node("n", home=tmp_path)
    stuck = _FailsToStart("stuck")

    def compose(*args: Any, **kwargs: Any) -> list[Any]:
        return [*composed(*args, **kwargs), stuck]

    monkeypatch.setattr(runtime_module, "compose", compose)

    async def main() -> None:
        with open_node("n", home=tmp_path) as node:
            runtime = NodeRuntime(node)
            starting = asyncio.create_task(runtime.start(None))
            done, _ = await asyncio.wait({starting}, timeout=GUARD)
            stuck.release.set()  # (the close let go, had it held the start)
            assert done, "the start waited for the close for ever"
            with pytest.raises(OSError, match="HSM is gone"):
                await starting
            await runtime.stop()

    asyncio.run(main())


def test_a_stuck_storage_call_is_abandoned_and_what_queued_behind_it_never_runs(
    tmp_path: Path, small_bound: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Stop 2: an HSM call on the storage thread blocks; the stop returns, and the write
    queued behind it is dropped, not run after the node stopped."""
    init_node("n", home=tmp_path)
    hsm = threading.Event()
    ran: list[str] = []

    async def main() -> None:
        with open_node("n", home=tmp_path) as node:
            runtime = NodeRuntime(node)
            await runtime.start(None)
            blocked = runtime.worker.submit(hsm.wait, 30)
            behind = runtime.worker.submit(ran.append, "write")
            await asyncio.wait_for(runtime.stop(), GUARD)
            assert behind.cancelled()
            assert not blocked.done()

    try:
        with caplog.at_level(logging.ERROR, logger="troth.node"):
            asyncio.run(main())
    finally:
        hsm.set()
    assert ran == []
    assert any("storage" in r.message for r in caplog.records if r.levelno == logging.ERROR)


_STUCK_AT_EXIT = """
import asyncio, importlib.util, sys, threading

# the module alone (standard library only), not the troth package: a fast start
spec = importlib.util.spec_from_file_location("worker", sys.argv[1])
worker_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(worker_module)
StoreWorker = worker_module.StoreWorker

async def main():
    worker = StoreWorker()
    worker.submit(threading.Event().wait)  # an HSM call that never answers
    try:
        await asyncio.wait_for(worker.drain(), 0.05)
    except TimeoutError:
        print("abandoned")

asyncio.run(main())
"""


def test_a_stuck_storage_call_does_not_hold_the_process_exit(tmp_path: Path) -> None:
    """Stop 2: the node's stop past its bound, the process ends (its storage thread, stuck in
    a call, was joined at exit for ever: `troth node stop` SIGKILLed it)."""
    import subprocess
    import sys

    worker = Path(__file__).resolve().parents[1] / "src" / "troth" / "node" / "worker.py"
    try:
        ended = subprocess.run(
            [sys.executable, "-c", _STUCK_AT_EXIT, str(worker)],
            cwd=tmp_path,
            capture_output=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the process did not end: its storage thread held its exit")
    assert ended.returncode == 0, ended.stderr
    assert ended.stdout.strip() == b"abandoned"


def test_a_stop_cancelled_while_links_wait_is_not_swallowed() -> None:
    """Stop 4: `Links.stop` cancelled while a reconnect task takes its time ending: the
    CancelledError reaches the stop's caller."""
    release = asyncio.Event()

    async def restore(link: Link) -> None:
        try:
            await asyncio.Event().wait()
        finally:  # a restore that takes its time to end (its channel's close)
            await release.wait()

    async def main() -> None:
        links = Links(restore)
        links.link("peer").relays.add("r")
        links.resume("peer")
        await asyncio.sleep(0)
        stopping = asyncio.create_task(links.stop())
        await asyncio.sleep(0.01)
        stopping.cancel()
        done, _ = await asyncio.wait({stopping}, timeout=GUARD)
        release.set()
        assert done, "the stop's cancellation was swallowed: it waited on"
        assert stopping.cancelled()

    asyncio.run(main())


def test_an_mcp_close_waits_for_its_stuck_sessions_together_then_cancels_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stop 3: five sessions stuck in an upstream call (here: an event never set); the MCP
    service's close took 10 s for each, one after another (50 s), and left them running. It
    waits for them together within MCP_CLOSE_SECONDS now, then cancels them."""
    import anyio

    from tests.support.mcp_orders import orders_server
    from troth import limits
    from troth.node.services.mcp import publish_upstream

    monkeypatch.setattr(limits, "MCP_CLOSE_SECONDS", 0.05, raising=False)
    init_node("n", home=tmp_path)

    async def main() -> None:
        with open_node("n", home=tmp_path) as node:
            runtime = NodeRuntime(node)
            await runtime.start(None)
            stuck: list[asyncio.Task[Any]] = []
            try:
                await publish_upstream(runtime, "orders", orders_server())
                service: Any = runtime.host.services["mcp.orders"]
                for n in range(5):  # sessions in an upstream call that never answers
                    inbound, _ = anyio.create_memory_object_stream[Any](1)
                    task = asyncio.create_task(asyncio.Event().wait())
                    stuck.append(task)
                    service.sessions[("channel", bytes([n]))] = _StuckSession(inbound, task)
                closing = asyncio.create_task(service.close())
                done, _ = await asyncio.wait({closing}, timeout=GUARD)
                assert done, "the close waited for its sessions one after another"
                await asyncio.sleep(0)
                assert all(task.cancelled() for task in stuck)
            finally:
                for task in stuck:  # (ended for the node's stop, had the close left them)
                    task.cancel()
                await runtime.stop()

    asyncio.run(main())


class _StuckSession:
    """What the MCP service's close sees of a session: its inbound stream and its task."""

    def __init__(self, inbound: Any, task: asyncio.Task[Any]) -> None:
        self.inbound = inbound
        self.task = task
