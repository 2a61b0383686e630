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
    goes on as it is."""
    task = asyncio.ensure_future(stopping)
    cancelled = False
    while True:
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
            continue
        if cancelled:
            raise asyncio.CancelledError
        return
