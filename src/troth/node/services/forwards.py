"""The served broker's forward pool (docs/secrets.md, "The served broker"): the http-inject
engine's upstream calls run on these threads, never on the broker's own thread, so an upstream
that answers slowly holds back no revocation, feed revocation, sweep or other agent's request.

The pool is bounded: at most `limits.MAX_FORWARDS` forwards run at once, at most
`limits.MAX_FORWARDS_PER_AGENT` of one member (its delegates count as it: the service passes
the members at the roots of the caller's chains, and a forward takes a place in the share of
each); one more is refused (SecretError BUSY), never queued. A caller with no current
credential (a stranger: keys are free) is refused before it takes a place: it holds no lease
to forward under. A forward holds its slot until its upstream
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


def _members(agent: Hashable) -> frozenset[Hashable]:
    """Whose shares a forward of `agent` takes: each member of a set (the members at the roots
    of the caller's chains), else `agent` itself."""
    return agent if isinstance(agent, frozenset) else frozenset({agent})


class ForwardSlot:
    """One admitted forward: `release()` (once; later calls do nothing) frees its place."""

    __slots__ = ("_members", "_pool", "_released")

    def __init__(self, pool: ForwardPool, members: frozenset[Hashable]) -> None:
        self._pool = pool
        self._members = members
        self._released = False

    def release(self) -> None:
        with self._pool._lock:
            if self._released:
                return
            self._released = True
            self._pool._drop(self._members)


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
        """A place for one forward of `agent` (a frozenset: of each of its members, the
        members at the roots of the caller's chains, whose shares it all takes: review 30b,
        forwards 1, a caller of two members' chains had a share of its own); SecretError BUSY
        when the pool or one of those shares is full (the caller may try again once one of its
        forwards ended)."""
        members = _members(agent)
        with self._lock:
            if self._count >= self.total:
                raise SecretError(
                    SecretFailure.BUSY, f"the broker runs {self.total} forwards already"
                )
            if any(self._running.get(member, 0) >= self.per_agent for member in members):
                raise SecretError(
                    SecretFailure.BUSY,
                    f"{self.per_agent} forwards of this member are running already",
                )
            for member in members:
                self._running[member] = self._running.get(member, 0) + 1
            self._count += 1
        return ForwardSlot(self, members)

    def running(self, agent: Hashable = None) -> int:
        """How many forwards run now: in all, or taking the share of `agent` (of a set of
        members: the fullest of their shares)."""
        with self._lock:
            if agent is None:
                return self._count
            return max(self._running.get(member, 0) for member in _members(agent))

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

    def _drop(self, members: frozenset[Hashable]) -> None:
        """One forward taking the shares of `members` ended (the lock held)."""
        for member in members:
            left = self._running[member] - 1
            if left:
                self._running[member] = left
            else:
                del self._running[member]
        self._count -= 1
