"""Review 63x2, exit: attacks on the bounded stop that did not work (each test fails if the
defence it names breaks)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import CancelledError

import pytest

from troth.errors import SecretError, SecretFailure
from troth.node.services.forwards import ForwardPool
from troth.node.worker import StoreWorker


def test_a_dropped_forward_request_keeps_its_place_until_the_upstream_answers() -> None:
    """A caller dropping its request (the waiter cancelled) to start another past its share:
    the forward runs on, its place taken, so the next one of that member is BUSY."""
    pool = ForwardPool(total=4, per_agent=1)
    running, answer = threading.Event(), threading.Event()

    def upstream() -> str:
        running.set()
        answer.wait(5)
        return "ok"

    async def main() -> None:
        call = asyncio.ensure_future(pool.run(pool.admit("agent"), upstream))
        await asyncio.to_thread(running.wait, 5)
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await call
        assert pool.running("agent") == 1
        with pytest.raises(SecretError) as busy:
            pool.admit("agent")
        assert busy.value.reason is SecretFailure.BUSY

    try:
        asyncio.run(main())
    finally:
        answer.set()


def test_a_call_queued_behind_a_stuck_one_is_told_when_abandoned() -> None:
    """A storage call accepted behind a stuck one, then the stop abandons the thread: its
    caller is told (cancelled), not left waiting, and it never runs."""
    worker = StoreWorker("troth-test-store")
    running, release = threading.Event(), threading.Event()
    ran: list[int] = []

    def stuck() -> None:
        running.set()
        release.wait(5)

    first = worker.submit(stuck)
    running.wait(5)
    queued = worker.submit(lambda: ran.append(1))
    worker.abandon()
    release.set()
    with pytest.raises(CancelledError):
        queued.result(timeout=5)
    first.result(timeout=5)
    assert ran == []
    with pytest.raises(RuntimeError):
        worker.submit(lambda: ran.append(2))
