"""Review 62t: attacks on the concurrent feed syncs (review 62t, feeds 1) that did not work.

Each test is a real attempt that fails if the defence it names breaks."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Generator
from types import SimpleNamespace
from typing import Any

import pytest

from troth.identity import Identifier
from troth.node import feedsync
from troth.node.at_once import each_at_once
from troth.node.worker import StoreWorker


def test_concurrent_feed_syncs_touch_the_store_on_the_storage_thread_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Feed syncs now run at once: could two authorities' page steps race on the store (a
    step on the event loop, or on two threads at once)? No: every step of every sync runs on
    the node's one storage thread (StoreWorker), one at a time, however their pages
    interleave."""
    authorities = [Identifier(bytes([i + 1]) * 32) for i in range(3)]
    steps: list[tuple[Identifier, int]] = []
    busy = threading.Lock()

    def feed_sync(authority: Identifier, *, now: Any) -> Generator[int, bytes, Any]:
        for page in range(3):
            if not busy.acquire(blocking=False):  # two steps at once
                raise AssertionError("two store steps at once")
            steps.append((authority, threading.get_ident()))
            busy.release()
            yield page
        return SimpleNamespace(count=3)

    async def call(router: Any, route: Any, method: str, arguments: Any) -> bytes:
        await asyncio.sleep(0)  # the other syncs' pages come in between
        return b"page"

    monkeypatch.setattr(feedsync, "call", call)
    monkeypatch.setattr(feedsync, "cbor", SimpleNamespace(expect_bytes=lambda v, what: v))

    async def main() -> int:
        worker = StoreWorker()
        store = SimpleNamespace(sync_due=lambda digest: [])
        runtime: Any = SimpleNamespace(
            worker=worker,
            node=SimpleNamespace(wallet=SimpleNamespace(feed_sync=feed_sync, store=store)),
            clock=None,
            router=None,
            trust=SimpleNamespace(set_feed=lambda a, f: None, read_due=lambda: None),
        )
        end: Any = SimpleNamespace(enc=b"e")
        try:
            await each_at_once(
                [functools.partial(feedsync.sync_feed, runtime, a, end) for a in authorities],
                len(authorities),
            )
        finally:
            await worker.drain()
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert len(steps) == 3 * len(authorities)
    assert len({thread for _a, thread in steps}) == 1
    assert steps[0][1] != loop_thread
    assert [a for a, _t in steps[:3]] != [authorities[0]] * 3  # they did interleave


def test_a_round_stopped_midway_leaves_no_sync_running() -> None:
    """The node stops (its maintenance task cancelled) while syncs are running and others
    wait for a place: could one go on, or start, after it? No: every running one is
    cancelled, and none waiting starts."""
    started: list[int] = []
    cancelled: list[int] = []
    forever = asyncio.Event()

    def hang(i: int) -> Any:
        async def run() -> None:
            started.append(i)
            try:
                await forever.wait()
            except asyncio.CancelledError:
                cancelled.append(i)
                raise

        return run

    async def main() -> None:
        task = asyncio.create_task(each_at_once([hang(i) for i in range(5)], 2))
        for _ in range(10):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(10):
            await asyncio.sleep(0)

    asyncio.run(main())
    assert started == [0, 1]
    assert cancelled == [0, 1]
