"""The served broker's forward pool (docs/secrets.md, "The served broker"): the http-inject
engine's upstream calls run on these threads, never on the broker's own thread, so an upstream
that answers slowly holds back no revocation, feed revocation, sweep or other agent's request.

The pool is bounded: at most `limits.MAX_FORWARDS` forwards run at once, at most
`limits.MAX_FORWARDS_PER_AGENT` of one member (its delegates count as it: the service passes
the members at the roots of the caller's chains); one more is refused (SecretError BUSY), never
queued. A caller with no current credential (a stranger: keys are free) is refused before it
takes a place: it holds no lease to forward under. A forward holds its slot until its upstream
call returned (each call ends within its secret's `timeout`, the engine's deadline), even when
the request that started it was dropped.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from troth import limits
from troth.errors import SecretError, SecretFailure

__all__ = ["ForwardPool", "ForwardSlot"]

T = TypeVar("T")


class ForwardSlot:
    """One admitted forward: `release()` (once; later calls do nothing) frees its place."""

    __slots__ = ("_agent", "_pool", "_released")

    def __init__(self, pool: ForwardPool, agent: Hashable) -> None:
        self._pool = pool
        self._agent = agent
        self._released = False

    def release(self) -> None:
        with self._pool._lock:
            if self._released:
                return
            self._released = True
            self._pool._drop(self._agent)


class ForwardPool:
    """Threads for upstream calls, with the admission limits of the module docstring."""

    def __init__(
        self,
        *,
        total: int = limits.MAX_FORWARDS,
        per_agent: int = limits.MAX_FORWARDS_PER_AGENT,
    ) -> None:
        self.total = total
        self.per_agent = per_agent
        self._executor = ThreadPoolExecutor(max_workers=total, thread_name_prefix="troth-forward")
        self._lock = threading.Lock()
        self._running: dict[Hashable, int] = {}
        self._count = 0

    def admit(self, agent: Hashable) -> ForwardSlot:
        """A place for one forward of `agent`; SecretError BUSY when the pool or the agent's
        share of it is full (the caller may try again once one of its forwards ended)."""
        with self._lock:
            if self._count >= self.total:
                raise SecretError(
                    SecretFailure.BUSY, f"the broker runs {self.total} forwards already"
                )
            held = self._running.get(agent, 0)
            if held >= self.per_agent:
                raise SecretError(
                    SecretFailure.BUSY,
                    f"{self.per_agent} forwards of this member are running already",
                )
            self._running[agent] = held + 1
            self._count += 1
        return ForwardSlot(self, agent)

    def running(self, agent: Hashable = None) -> int:
        """How many forwards run now (of `agent`, or in all)."""
        with self._lock:
            return self._count if agent is None else self._running.get(agent, 0)

    async def run(self, slot: ForwardSlot, call: Callable[[], T]) -> T:
        """`call()` on a pool thread under `slot`, freed when the call returned (a cancelled
        waiter leaves the call running: its slot stays taken until it ends)."""
        try:
            future: Future[T] = self._executor.submit(call)
        except BaseException:
            slot.release()
            raise
        future.add_done_callback(lambda _done: slot.release())
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """No more forwards; those not started are cancelled (running ones end by their
        deadline)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _drop(self, agent: Hashable) -> None:
        """One forward of `agent` ended (the lock held)."""
        left = self._running[agent] - 1
        if left:
            self._running[agent] = left
        else:
            del self._running[agent]
        self._count -= 1
