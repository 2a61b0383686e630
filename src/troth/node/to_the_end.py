"""Run a stop or a close to its end, however often its caller is cancelled meanwhile (review
63g, api 1-2; review 63o, lifecycle 1: a second cancellation ended such a stop midway, and
what it stopped ran on)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

__all__ = ["to_its_end"]


async def to_its_end(stopping: Awaitable[None]) -> None:
    """Await `stopping` (a stop) in a task of its own until it ended, however often the caller
    is cancelled meanwhile; CancelledError after it when the caller was. The stop's own error
    goes on as it is, however the two met."""
    task = asyncio.ensure_future(stopping)
    cancelled = False
    while True:
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                cancelled = True
                continue
            failure = None if task.cancelled() else task.exception()
            if failure is None:
                raise
            # its error goes on, as when the caller was cancelled before it (review 63o,
            # lifecycle 3: cancelled in the step it failed, the error was left in its task)
            raise failure from None
        if cancelled:
            raise asyncio.CancelledError
        return
