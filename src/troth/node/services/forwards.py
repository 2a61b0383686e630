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

Each forward runs on a daemon thread of its own (at most `total` at once: the admission bounds
them), never an executor's: a ThreadPoolExecutor's threads are joined at the interpreter's
exit, so one upstream call that never returned held the process's exit for ever after the
node's bounded stop (review 63x2, exit 1). `close` abandons the forwards under way: each
caller gets SecretError UPSTREAM_FAILED at once (never a silent success), the call is left to
its thread, whose answer is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future, InvalidStateError
from typing import Any, TypeVar

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
            self._release_locked()

    def _release_locked(self) -> None:
        """`release` with the pool's lock held."""
        if not self._released:
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
        self._lock = threading.Lock()
        self._calls: set[Future[Any]] = set()  # the forwards under way, failed by `close`
        self._closed = False
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
        """`call()` on a daemon thread under `slot`, freed when the call returned (a cancelled
        waiter leaves the call running: its slot stays taken until it ends); SecretError
        UPSTREAM_FAILED once the pool is closed, or when `close` abandons it under way."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                slot._release_locked()
                raise SecretError(SecretFailure.UPSTREAM_FAILED, "the broker is stopping")
            self._calls.add(future)
        future.add_done_callback(lambda done: self._ended(slot, done))
        thread = threading.Thread(
            target=_forward, args=(future, call), name="troth-forward", daemon=True
        )
        try:
            thread.start()
        except BaseException as exc:  # no thread to be had: the forward never ran
            with contextlib.suppress(InvalidStateError):
                future.set_exception(exc)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """No more forwards; those under way are abandoned: their callers get SecretError
        UPSTREAM_FAILED now, their calls are left to their threads (each ends by its deadline,
        or with the process: the threads are daemons)."""
        with self._lock:
            self._closed = True
            abandoned = list(self._calls)
        for future in abandoned:
            with contextlib.suppress(InvalidStateError):
                future.set_exception(
                    SecretError(SecretFailure.UPSTREAM_FAILED, "the broker stopped first")
                )

    def _ended(self, slot: ForwardSlot, future: Future[Any]) -> None:
        """A forward's future is done (answered, failed or abandoned): its slot is freed."""
        with self._lock:
            self._calls.discard(future)
        slot.release()

    def _drop(self, members: frozenset[Hashable]) -> None:
        """One forward taking the shares of `members` ended (the lock held)."""
        for member in members:
            left = self._running[member] - 1
            if left:
                self._running[member] = left
            else:
                del self._running[member]
        self._count -= 1


def _forward(future: Future[T], call: Callable[[], T]) -> None:
    """On a forward's thread: `call()`, its result or exception handed to `future` (dropped
    when `close` abandoned it first)."""
    try:
        if not future.set_running_or_notify_cancel():
            return
    except RuntimeError:  # abandoned by `close` before it started: it never runs
        return
    try:
        result = call()
    except BaseException as exc:  # handed to the caller, as an executor's future does
        with contextlib.suppress(InvalidStateError):
            future.set_exception(exc)
    else:
        with contextlib.suppress(InvalidStateError):
            future.set_result(result)
