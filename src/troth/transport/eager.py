"""Running a coroutine at once, inside a protocol callback, until it first waits.

A frame that arrives on a connection is routed from the read callback itself when nothing
arrived before it is still being routed (docs/protocols.md, "TCP transport"): routing a
message normally runs to its end without waiting (decrypt, decide, answer, write), so starting
a task for it would only cost a loop iteration per message (a request whose handler waits is
started in a task of its own: "Concurrent requests"). When the routing does wait (the peer is
slow to read, a one-way handler waits), what is left of it continues in a task, and the frames
after it wait for that task, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

__all__ = ["start_eagerly"]


def start_eagerly(
    coroutine: Coroutine[Any, Any, None], loop: asyncio.AbstractEventLoop
) -> asyncio.Task[None] | None:
    """Run `coroutine` now, until it ends or first waits: None when it ended (its exception,
    if any, is raised here), else the task that carries it on from where it waits."""
    try:
        waiting = coroutine.send(None)
    except StopIteration:
        return None
    return loop.create_task(_carry_on(coroutine, waiting))


async def _carry_on(coroutine: Coroutine[Any, Any, None], waiting: Any) -> None:
    """Drive `coroutine` as a task would, from the point where it yielded `waiting` (an
    asyncio future, or None for a bare yield); cancelling this task cancels it."""
    while True:
        thrown: BaseException | None = None
        if waiting is None:
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError as exc:
                thrown = exc
        else:
            waiting._asyncio_future_blocking = False  # handed to this task, not to the loop
            try:
                await waiting
            except asyncio.CancelledError as exc:
                if not waiting.cancelled():  # this task was cancelled, not what it awaited
                    thrown = exc
            except Exception:  # noqa: S110 - the coroutine reads the outcome itself
                pass
        try:
            waiting = coroutine.send(None) if thrown is None else coroutine.throw(thrown)
        except StopIteration:
            return
