"""Review 64c: attacks on session 63's bounded stop that did not work (each test would fail if
the defence it names broke)."""

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
from troth.node.node import init_node, open_node
from troth.node.runtime import NodeRuntime
from troth.node.services.base import Method
from troth.node.worker import StoreWorker


@pytest.fixture
def small_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(to_the_end, "NODE_STOP_SECONDS", 0.35, raising=False)
    monkeypatch.setattr(to_the_end, "NODE_STOP_RESERVE_SECONDS", 0.04, raising=False)
    monkeypatch.setattr(runtime_module, "UPKEEP_STOP_SECONDS", 0.05)


def _stores() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "troth-store" and t.is_alive()]


def test_two_stops_at_once_and_a_third_after_leave_nothing_running(tmp_path: Path) -> None:
    """Two stops at once (a signal and a serve block's end), then a third: each returns, no
    error, no task and no storage thread left, the listener's port free again."""
    init_node("n", home=tmp_path)
    before = len(_stores())

    async def main() -> tuple[str, int]:
        with open_node("n", home=tmp_path) as node:
            runtime = NodeRuntime(node)
            await runtime.start(("127.0.0.1", 0))
            listening = runtime.listening
            assert listening is not None
            results = await asyncio.gather(runtime.stop(), runtime.stop(), return_exceptions=True)
            assert list(results) == [None, None]
            await runtime.stop()
            assert runtime.worker.stopped
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            assert others == []
            return listening

    host, port = asyncio.run(main())
    assert len(_stores()) == before

    async def relisten() -> None:
        server = await asyncio.start_server(lambda r, w: None, host, port)
        server.close()

    asyncio.run(relisten())


def test_a_call_under_way_when_abandoned_still_answers_its_caller() -> None:
    """A write the storage thread runs when the stop abandons it is not reported failed (it
    commits after: its caller, if still waiting, is told it did)."""
    gate, taken = threading.Event(), threading.Event()

    def write() -> str:
        taken.set()
        gate.wait(5)
        return "committed"

    async def main() -> None:
        worker = StoreWorker()
        running = worker.submit(write)
        behind = worker.submit(lambda: "never")
        taken.wait(5)
        worker.abandon()
        assert behind.cancelled()
        gate.set()
        assert await asyncio.wrap_future(running) == "committed"
        with pytest.raises(RuntimeError, match="stopped"):
            worker.submit(lambda: None)

    asyncio.run(main())


class _Deaf:
    """A service whose close swallows every cancellation until released."""

    oneway: Method | None = None

    def __init__(self) -> None:
        self.name = "deaf"
        self.methods: Mapping[str, Method] = {}
        self.release = asyncio.Event()

    async def maintain(self, now: int) -> None:
        return None

    def status(self) -> dict[str, Any]:
        return {}

    async def close(self) -> None:
        while not self.release.is_set():
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                continue


def test_a_close_swallowing_its_cancellation_holds_no_stop(
    tmp_path: Path, small_bound: None, caplog: pytest.LogCaptureFixture
) -> None:
    """A service's close that swallows the budget's cancellation: the stop still returns, the
    stages after it ran (the storage thread ended), the close named in an ERROR."""
    init_node("n", home=tmp_path)

    async def main() -> None:
        with open_node("n", home=tmp_path) as node:
            runtime = NodeRuntime(node)
            await runtime.start(None)
            deaf = _Deaf()
            runtime.add_service(deaf)
            stopping = asyncio.ensure_future(runtime.stop())
            done, _ = await asyncio.wait({stopping}, timeout=1.5)
            deaf.release.set()  # (let it go, so the loop can end)
            assert done, "a deaf close held the stop"
            await stopping
            assert runtime.worker.stopped
            assert runtime.worker._ended.done()

    with caplog.at_level(logging.ERROR, logger="troth.node"):
        asyncio.run(main())
    assert any("deaf" in r.message for r in caplog.records if r.levelno == logging.ERROR)


def test_a_new_runtime_after_a_stop_cut_short_runs_and_the_old_queue_never_does(
    tmp_path: Path, small_bound: None
) -> None:
    """Start after stop: the old storage thread stuck in a call (an HSM that never answers),
    a write queued behind it; a new runtime on the same node starts, writes and stops; the
    old queued write never runs, even once the stuck call returns."""
    init_node("n", home=tmp_path)
    hsm = threading.Event()
    ran: list[str] = []

    async def main() -> None:
        with open_node("n", home=tmp_path) as node:
            first = NodeRuntime(node)
            await first.start(None)
            stuck = first.worker.submit(hsm.wait, 5)
            first.worker.submit(ran.append, "old")
            await first.stop()
            second = NodeRuntime(node)
            await second.start(None)
            await second.worker.run(ran.append, "new")
            assert second.status()["identifier"] == first.status()["identifier"]
            await second.stop()
            hsm.set()
            await asyncio.wrap_future(stuck)
            first.worker._ended.result(5)  # the old thread ended without taking more

    try:
        asyncio.run(main())
    finally:
        hsm.set()
    assert ran == ["new"]
