"""The MCP gate's own threads: where it judges and records its tool calls (`McpGate`), off the
event loop, which serves the other sessions (a recording point signs and appends durably).

Review 63x2, exit 3: the gate ran that work with `anyio.to_thread.run_sync`, on anyio's worker
threads, which are not daemons and which a cancelled caller waits for: a recorder that never
returned (the node's trace log signing with an HSM that never answers) held the cancelled
session, and the process's exit after it, for ever. These threads are daemons, at most
MAX_MCP_GATE_THREADS of one gate, an idle one ending after MCP_GATE_IDLE_SECONDS; at most
MAX_MCP_GATE_QUEUE jobs wait for them (past it, or once the gate is closed, a job is refused at
once with the gate's error: never decided, nothing recorded).

A job's caller awaits its result. Cancelled, it leaves:
- a job not started yet is dropped (it never runs: nothing decided, nothing recorded, and what
  it holds is let go);
- a job under way runs to its end on its thread (a record is written whole, or fails: never
  half of it), and its `left` follow-up then runs there, after it, with its result (the gate's:
  a call recorded allowed that is not forwarded any more is recorded refused after it, so the
  trace never keeps a call that did not run as only allowed); the caller waits for both up to
  its `grace` (the gate's MCP_GATE_GRACE_SECONDS), so a cancelled call ends with its records
  written unless its recorder is stuck, which holds it no longer.

A job's result is counted under way until its caller takes it; one the caller takes once the
gate is closed is not taken but followed as if its caller had left (McpGateError to it: review
64l, mcp 1, a call decided as the gate closed was forwarded after the close).

Kept work (`keep`: what completes a record already made, as such a refusal) is never refused
nor dropped: its caller's cancellation leaves it queued, and a closed gate still runs it (its
count is bounded by the calls recorded allowed and in flight). `drain` waits, within a bound,
for the work under way and kept, so a caller closing the trace log after the gate finds it
written.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import anyio
import anyio.lowlevel

from troth import limits
from troth.integrations.mcp.answers import McpGateError, upstream_said

__all__ = ["GateWorker", "loop_soon"]

log = logging.getLogger("troth.mcp")
T = TypeVar("T")


def loop_soon() -> Callable[[Callable[[], object]], object]:
    """How another thread hands a callable to the running event loop (asyncio's
    `call_soon_threadsafe`, trio's `run_sync_soon`): RuntimeError once that loop is gone."""
    native = anyio.lowlevel.current_token().native_token
    soon: Callable[[Callable[[], object]], object] | None
    soon = getattr(native, "call_soon_threadsafe", None)
    if soon is None:
        soon = getattr(native, "run_sync_soon")  # noqa: B009 (trio's token)
    return soon


class _State(enum.Enum):
    """Where a job is: waiting for a thread, on one, ended (its result kept for its caller),
    or left by its caller (dropped if it had not started; run to its end, then its follow-up,
    if it had)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    LEFT = "left"


class _Job(Generic[T]):
    """One call to run on a gate thread, and what its caller waits on."""

    __slots__ = (
        "done",
        "error",
        "held",
        "kept",
        "left",
        "result",
        "state",
        "taken",
        "wake",
        "work",
    )

    def __init__(
        self, work: Callable[[], T], left: Callable[[T], object] | None, kept: bool
    ) -> None:
        self.work: Callable[[], T] | None = work
        self.left = left
        self.kept = kept
        self.state = _State.QUEUED
        self.result: T | None = None
        self.error: BaseException | None = None
        self.wake: Callable[[], object] | None = None
        self.done: anyio.Event | None = None  # set (`wake`) in its caller's event loop
        self.taken = False  # its caller takes its result (`run`), not a follow-up's
        self.held = False  # ended, counted busy until its caller takes its result or leaves


def _attach(job: _Job[Any]) -> anyio.Event:
    """An event of the running event loop, set once `job` ended (from its thread)."""
    soon = loop_soon()
    done = anyio.Event()

    def wake() -> None:
        with contextlib.suppress(RuntimeError):  # the event loop is gone: nobody waits
            soon(done.set)

    job.wake, job.done = wake, done
    return done


class _Thread:
    """One gate thread's inbox: the job handed to it while it was idle (None: end)."""

    __slots__ = ("inbox",)

    def __init__(self) -> None:
        self.inbox: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()


class GateWorker:
    """Daemon threads running a gate's blocking work, awaited (module docstring)."""

    def __init__(
        self,
        *,
        threads: int = limits.MAX_MCP_GATE_THREADS,
        queued: int = limits.MAX_MCP_GATE_QUEUE,
        idle: float = limits.MCP_GATE_IDLE_SECONDS,
        name: str = "troth-mcp-gate",
    ) -> None:
        self.most = threads
        self.queued = queued
        self.idle_seconds = idle
        self.name = name
        self._lock = threading.Lock()
        self._backlog: deque[_Job[Any]] = deque()  # waiting for a thread (kept ones included)
        self._idle: list[_Thread] = []  # threads waiting for a job
        self._threads = 0  # started and not ended
        self._busy = 0  # jobs queued or running
        self._drained: list[Callable[[], None]] = []  # told when no job is queued or running
        self.closed = False

    def threads(self) -> int:
        """How many threads run now (busy or idle)."""
        with self._lock:
            return self._threads

    def busy(self) -> int:
        """How many jobs are queued or running now."""
        with self._lock:
            return self._busy

    async def run(
        self,
        work: Callable[[], T],
        *,
        left: Callable[[T], object] | None = None,
        keep: bool = False,
        grace: float = 0.0,
    ) -> T:
        """`work()` on a gate thread: its result, or its exception. McpGateError at once when
        the gate is closed or MAX_MCP_GATE_QUEUE jobs wait already (never for `keep` work).
        Cancelled, the caller leaves: `work` dropped if not started (unless `keep`), else run
        to its end and `left(result)` after it, on its thread, which the caller waits for up
        to `grace` seconds (shielded: so its records are written when it ends, unless its
        recorder is stuck) before its cancellation goes on."""
        job = _Job(work, left, keep)
        job.taken = True
        done = _attach(job)
        self._submit(job)
        try:
            await done.wait()
        except BaseException:  # cancelled: leave the job (module docstring)
            ending = self._leave(job)
            if ending is not None and grace > 0:
                with anyio.CancelScope(shield=True) as scope:
                    scope.deadline = anyio.current_time() + grace
                    await ending.wait()
            raise
        if self._handed(job):
            raise McpGateError("the gate is closed")
        if job.error is not None:
            try:
                raise job.error
            finally:
                job.error = None  # no cycle through the traceback
        return job.result  # type: ignore[return-value]

    def _handed(self, job: _Job[Any]) -> bool:
        """Its caller takes the result of `job`: whether the gate closed meanwhile, so the
        result is not taken but its follow-up runs, as if its caller had left (review 64l, mcp
        1: a call decided as the gate closed was forwarded after the close). Until then, the
        job counted busy, `drain` waits (its follow-up counted before the job is not)."""
        closing = self.closed and not job.kept and job.error is None and job.left is not None
        if closing and job.left is not None:
            result, job.result = job.result, None
            follow = _Job(functools.partial(job.left, result), None, True)
            _attach(follow)
            self._submit(follow)
        self._release(job)
        return closing

    def _release(self, job: _Job[Any]) -> None:
        """`job`'s result taken or left by its caller: it no longer counts busy (`held`)."""
        with self._lock:
            if job.held:
                job.held = False
                self._ended_locked()

    def _submit(self, job: _Job[Any]) -> None:
        """Queue `job`, handed to an idle thread or a new one when there is room."""
        with self._lock:
            if not job.kept:
                if self.closed:
                    raise McpGateError("the gate is closed")
                if len(self._backlog) >= self.queued:
                    raise McpGateError(f"{self.queued} calls wait to be decided: send later")
            self._busy += 1
            if self._idle:
                self._idle.pop().inbox.put(job)
                return
            self._backlog.append(job)
            if self._threads >= self.most:
                return
            self._threads += 1
        try:
            threading.Thread(target=self._serve, name=self.name, daemon=True).start()
        except BaseException:  # no thread to be had: the job (if still queued) fails
            with self._lock:
                self._threads -= 1
                taken = not job.kept and job in self._backlog  # (kept: taken up later)
                if taken:
                    self._backlog.remove(job)
                    self._ended_locked()
            if taken:
                raise McpGateError("no thread to decide the call on") from None

    def _leave(self, job: _Job[Any]) -> anyio.Event | None:
        """The caller of `job` is gone (cancelled): what is set once the work it leaves ended
        (None: nothing left to run)."""
        with self._lock:
            state = job.state
            if state is _State.QUEUED and not job.kept:
                job.work = None  # never runs: what it holds let go now
                with contextlib.suppress(ValueError):  # (handed to an idle thread's inbox)
                    self._backlog.remove(job)
                    self._ended_locked()
                job.state = _State.LEFT
                return None
            if state is not _State.DONE:
                job.state = _State.LEFT
                return job.done
        # ended as its caller was cancelled: its result is not taken, so its follow-up runs
        ending = None
        if job.error is None and job.left is not None:
            result, job.result = job.result, None
            follow = _Job(functools.partial(job.left, result), None, True)
            ending = _attach(follow)
            self._submit(follow)
        job.error = None
        self._release(job)
        return ending

    def _serve(self) -> None:
        """A gate thread: the jobs of the backlog, then those handed to it; ends when idle
        for `idle_seconds`, or told to; ended by an exception (a BaseException out of a
        follow-up), it counts itself ended (review 64l, mcp 2: the worker believed it still
        ran, and with all its threads so lost, jobs queued for ever)."""
        try:
            self._serving(_Thread())
        except BaseException:
            with self._lock:
                self._threads -= 1
            raise

    def _serving(self, me: _Thread) -> None:
        """`_serve`'s loop (it ends counted ended, except by an exception)."""
        with self._lock:
            job = self._backlog.popleft() if self._backlog else None
        while True:
            if job is not None:
                self._take(job)
            with self._lock:
                if self._backlog:
                    job = self._backlog.popleft()
                    continue
                if self.closed:  # (kept work coming later starts a thread of its own)
                    self._threads -= 1
                    return
                self._idle.append(me)
            try:
                job = me.inbox.get(timeout=self.idle_seconds)
            except queue.Empty:
                with self._lock:
                    if me in self._idle:  # nothing handed to it meanwhile: it ends
                        self._idle.remove(me)
                        self._threads -= 1
                        return
                job = me.inbox.get()  # handed to it as it timed out
            if job is None:  # told to end by `close` (which counted it ended)
                return

    def _take(self, job: _Job[Any]) -> None:
        """On a gate thread: run `job` unless its caller left before it started."""
        with self._lock:
            work = job.work
            if job.state is _State.LEFT:  # its caller gone: dropped, or run as kept work,
                if not job.kept:  # never counted as a result its caller takes (review 66y,
                    work = None  # mcp 3: `drain` waited out its time for it, for ever)
            elif work is not None:
                job.state = _State.RUNNING
        held = False  # its result handed to its caller, who counts it ended (`_release`)
        try:
            if work is None:
                return
            try:
                result = work()
            except BaseException as exc:
                with self._lock:
                    job.work = None
                    left = job.state is _State.LEFT
                    if not left:
                        held = job.held = job.taken
                        job.state, job.error = _State.DONE, exc
                if left:
                    log.warning("a gate job its caller left failed: %s", upstream_said(exc))
            else:
                with self._lock:
                    job.work = None
                    left = job.state is _State.LEFT
                    if not left:
                        held = job.held = job.taken
                        job.state, job.result = _State.DONE, result
                if left and job.left is not None:
                    try:
                        job.left(result)
                    except Exception as exc:
                        log.error("a gate job's follow-up failed: %s", upstream_said(exc))
            if job.wake is not None:  # its result, or (left) its end and follow-up's
                job.wake()
        finally:
            if not held:
                with self._lock:
                    self._ended_locked()

    def _ended_locked(self) -> None:
        """One job ended or was dropped (the lock held): when none is left, tell `drain`."""
        self._busy -= 1
        if self._busy or not self._drained:
            return
        told, self._drained = self._drained, []
        for tell in told:
            tell()

    def close(self) -> None:
        """Take no more new work (McpGateError for it): the jobs not started are failed with
        it (never run), kept ones excepted, which run; the idle threads end."""
        with self._lock:
            self.closed = True
            refused = [job for job in self._backlog if not job.kept]
            for job in refused:
                self._backlog.remove(job)
                job.work, job.state = None, _State.DONE
                job.error = McpGateError("the gate is closed")
                self._ended_locked()
            idle, self._idle = self._idle, []
            self._threads -= len(idle)
        for thread in idle:
            thread.inbox.put(None)
        for job in refused:
            if job.wake is not None:
                job.wake()

    async def drain(self, seconds: float) -> bool:
        """`close`, then wait up to `seconds` for the work under way and kept to end (the rest
        left to its daemon threads): whether it all ended."""
        self.close()
        soon = loop_soon()
        ended = anyio.Event()

        def tell() -> None:
            with contextlib.suppress(RuntimeError):
                soon(ended.set)

        with self._lock:
            if not self._busy:
                return True
            self._drained.append(tell)
        with anyio.move_on_after(seconds):
            await ended.wait()
            return True
        with self._lock, contextlib.suppress(ValueError):
            self._drained.remove(tell)
        return False
