"""Storage work off the event loop: one thread, one call at a time (SQLite gives each thread
its own connection), so a slow store never stalls the channels the loop serves."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["StoreWorker"]

T = TypeVar("T")


class StoreWorker:
    """Runs synchronous storage calls on a dedicated thread, awaited from async code."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="troth-store")

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`function(*args, **kwargs)` on the storage thread; its result or its exception."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(function, *args, **kwargs)
        )

    def submit(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """`function(*args, **kwargs)` queued on the storage thread: its future (cancelling it
        before it started takes it off the queue; once started, it runs to its end)."""
        return self._executor.submit(functools.partial(function, *args, **kwargs))

    async def drain(self) -> None:
        """Stop taking work and return once the calls already queued have run (the event loop
        keeps running meanwhile): after this the node's database may be closed, which it may
        not while the storage thread still uses it."""
        await asyncio.to_thread(self._executor.shutdown, wait=True)
