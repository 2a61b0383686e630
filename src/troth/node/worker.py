"""Storage work off the event loop: one thread, one call at a time (SQLite gives each thread
its own connection), so a slow store never stalls the channels the loop serves."""

from __future__ import annotations

import asyncio
import functools
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["StoreWorker"]

T = TypeVar("T")


class StoreWorker:
    """Runs synchronous storage calls on a dedicated thread, awaited from async code. A call
    cancelled before the thread took it up is dropped at once, its arguments with it: the
    thread's queue holds only a small ticket for it (review 22, finding 2: cancelled pushes of
    large bundles stayed queued, arguments and all, while the thread was busy)."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="troth-store")
        self._lock = threading.Lock()
        self._calls: dict[int, tuple[Future[Any], Callable[[], Any]]] = {}
        self._tickets = itertools.count()

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`function(*args, **kwargs)` on the storage thread; its result or its exception
        (cancelling the awaiting task before the thread took it up drops it)."""
        return await asyncio.wrap_future(self.submit(function, *args, **kwargs))

    def submit(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """`function(*args, **kwargs)` queued on the storage thread: its future (cancelling it
        before it started takes it, and what it holds, off the queue; once started, it runs to
        its end)."""
        future: Future[T] = Future()
        ticket = next(self._tickets)
        with self._lock:
            self._calls[ticket] = (future, functools.partial(function, *args, **kwargs))
        future.add_done_callback(lambda done: self._drop(ticket) if done.cancelled() else None)
        try:
            self._executor.submit(self._take, ticket)
        except RuntimeError:  # drained: nothing runs any more, and nothing is kept
            self._drop(ticket)
            raise
        return future

    def _drop(self, ticket: int) -> None:
        with self._lock:
            self._calls.pop(ticket, None)

    def _take(self, ticket: int) -> None:
        """On the storage thread: run the call of `ticket` unless it was cancelled."""
        with self._lock:
            taken = self._calls.pop(ticket, None)
        if taken is None:
            return
        future, call = taken
        if not future.set_running_or_notify_cancel():
            return
        try:
            result = call()
        except BaseException as exc:  # handed to the caller, as an executor's future does
            future.set_exception(exc)
        else:
            future.set_result(result)

    async def drain(self) -> None:
        """Stop taking work and return once the calls already queued have run (the event loop
        keeps running meanwhile): after this the node's database may be closed, which it may
        not while the storage thread still uses it."""
        await asyncio.to_thread(self._executor.shutdown, wait=True)
