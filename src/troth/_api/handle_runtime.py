"""One runtime per `Node` handle in this process (review 62j, the fix of review 62h, api 4).

A `serve` block claims the handle for itself before its first await: a second `serve` entered
beside it is a RuntimeError (two were both run, and the first to end unmarked the handle while
the other served). The `connect` blocks and leases of a handle outside `serve` share one
runtime, started by the first of them and stopped by the last one out: each of them ran one of
its own while none had started yet. The runtime starts in a task of its own, so that a block
cancelled while it starts leaves the others served, and the last block out cancels or stops it
(none is leaked). `serve` entered while that runtime runs is a RuntimeError, as is `serve`
beside a serving block; a block outside `serve` entered while the handle's `serve` block
starts waits for it and runs on its runtime. A `serve` block cancelled again while its runtime
stops leaves only once the stop ended, the handle let go then (review 63g, api 1-2).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from troth.errors import ConfigError
from troth.node.to_the_end import to_its_end

if TYPE_CHECKING:
    from troth._api.network import RunningNode, Service
    from troth._api.node import Node

__all__ = ["HandleRuntime"]


@dataclass(eq=False)
class _Serving:
    """A `serve` block's claim of the handle: `running` while its runtime runs; `ready` done
    once it runs (or the block gave up), `done` once the block let the handle go."""

    loop: asyncio.AbstractEventLoop
    ready: asyncio.Future[None]
    done: asyncio.Future[None]
    running: RunningNode | None = None


@dataclass(eq=False)
class _Shared:
    """The runtime the handle's blocks outside `serve` share: its start (a task), how many
    blocks use it, and its stop once the last of them left."""

    loop: asyncio.AbstractEventLoop
    starting: asyncio.Task[RunningNode]
    users: int = 0
    stopping: asyncio.Task[None] | None = None


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class HandleRuntime:
    """What runs one `Node` handle in this process: nothing, its `serve` block's runtime, or
    the runtime its blocks outside `serve` share; never two at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        """Taken for every change of the claims (a handle may be used from two threads)."""
        self._serving: _Serving | None = None
        self._shared: _Shared | None = None

    @contextlib.asynccontextmanager
    async def serve(
        self, node: Node, listen: tuple[str, int] | None, services: tuple[Service, ...]
    ) -> AsyncIterator[RunningNode]:
        """`Node.serve`: the handle claimed for this block alone, its runtime started, then
        stopped when the block ends (troth._api.network)."""
        from troth._api.network import start_running, stop_running

        serving = await self._claim(node)
        try:
            running = await start_running(node, listen, services)
        except BaseException:
            self._let_go(serving)
            raise
        serving.running = running
        _settle(serving.ready)
        try:
            yield running
        finally:
            serving.running = None
            try:  # to its end, the block cancelled again meanwhile (review 63g, api 1: the
                # stop ended midway, its services, listener and upkeep ran on, and the handle
                # was let go: a second serve beside them)
                await to_its_end(stop_running(node, running))
            finally:
                self._let_go(serving)

    def _let_go(self, serving: _Serving) -> None:
        """A `serve` block's claim ended: the blocks waiting for it ask again."""
        with self._lock:
            self._serving = None
        _settle(serving.ready)
        _settle(serving.done)

    async def _claim(self, node: Node) -> _Serving:
        """The handle claimed for a `serve` block, with no await between the check and the mark
        (a shared runtime that stops on this loop is waited for first); RuntimeError when the
        handle serves or runs for blocks outside `serve`."""
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                shared = self._shared
                if self._serving is None and shared is None:
                    self._serving = _Serving(loop, loop.create_future(), loop.create_future())
                    return self._serving
                if shared is None or shared.stopping is None or shared.loop is not loop:
                    raise RuntimeError(
                        f"node {node.name!r} is already running in this process"
                        + (
                            ""
                            if shared is None
                            else " for its connect blocks or leases outside serve: serve it "
                            "first, and connect (or lease) inside its serve block"
                        )
                    )
                stopping = shared.stopping
            await asyncio.wait([stopping])

    @contextlib.asynccontextmanager
    async def running(self, node: Node) -> AsyncIterator[RunningNode]:
        """The running node a `connect` block or a lease runs on: the handle's `serve` block's
        (waited for while it starts), else the runtime the blocks outside `serve` share (for
        this block's duration). ConfigError from an event loop other than the one that runs
        the handle."""
        loop = asyncio.get_running_loop()
        while True:
            joined = self._join(node, loop)
            if isinstance(joined, _Shared):
                break
            if isinstance(joined, asyncio.Future):
                await asyncio.wait([joined])
                continue
            yield joined  # the serve block's: it ends with that block
            return
        try:
            yield await asyncio.shield(joined.starting)
        finally:
            stopping = self._leave(node, joined)
            if stopping is not None:  # cancelled again, the stop goes on and frees the handle
                await asyncio.shield(stopping)

    def _join(
        self, node: Node, loop: asyncio.AbstractEventLoop
    ) -> RunningNode | _Shared | asyncio.Future[Any]:
        """The serve block's running node; or the shared runtime, counted as used by one more
        block (started now if none runs); or what to wait for before asking again."""
        from troth._api.network import start_running

        with self._lock:
            serving = self._serving
            if serving is not None:
                if serving.loop is not loop:
                    raise _another_loop(node)
                if serving.running is not None:
                    return serving.running
                return serving.done if serving.ready.done() else serving.ready
            shared = self._shared
            if shared is None:
                starting = loop.create_task(start_running(node, None, ()))
                shared = self._shared = _Shared(loop, starting)
            if shared.loop is not loop:
                raise _another_loop(node, shared=True)
            if shared.stopping is not None:
                return shared.stopping
            shared.users += 1
            return shared

    def _leave(self, node: Node, shared: _Shared) -> asyncio.Task[None] | None:
        """One block less uses `shared`: the last one out stops it (the task that does)."""
        with self._lock:
            shared.users -= 1
            if shared.users:
                return None
            shared.stopping = shared.loop.create_task(self._wind_down(node, shared))
            return shared.stopping

    async def _wind_down(self, node: Node, shared: _Shared) -> None:
        """Stop `shared` (its start cancelled if it still starts; a failed start stopped what
        it started), then let the handle go."""
        from troth._api.network import stop_running

        try:
            starting = shared.starting
            starting.cancel()  # (nothing once it is done)
            await asyncio.wait([starting])
            if not starting.cancelled() and starting.exception() is None:
                await stop_running(node, starting.result())
        finally:
            with self._lock:
                self._shared = None


def _another_loop(node: Node, *, shared: bool = False) -> ConfigError:
    """The refusal of a use from another event loop than the one that runs the handle: its
    serve block's, or that of its blocks outside `serve` (another thread's `Node.call`,
    `connect` block or lease, of which "its serve block's loop" said nothing true: review 64n,
    api 7)."""
    if shared:
        return ConfigError(
            f"node {node.name!r} runs on another event loop (another thread's Node.call, "
            "connect block or lease, outside serve): one handle runs on one loop at a time; "
            "open another handle (troth.Node.open) for this thread, or wait for it to end"
        )
    return ConfigError(
        f"node {node.name!r} is served on another event loop: use it from inside its serve "
        "block's loop"
    )
