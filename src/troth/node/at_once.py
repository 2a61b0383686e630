"""Work on several trusted authorities at once, a bounded number at a time (review 62t,
feeds 1: a maintenance round synced their feeds, and refreshed its credentials from them, one
after the other, so each slow or unreachable authority delayed every other's by its whole
timeout)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

__all__ = ["each_at_once"]

T = TypeVar("T")
log = logging.getLogger("troth.node")


async def each_at_once(calls: Sequence[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Run `calls` at once, at most `limit` at a time (the others wait for a place, in their
    order); their results in their order, once all ended. Each handles its own failures: one
    that raises abandons no other midway; the first such error is raised once all ended (any
    further one logged). Cancelled, the calls running are cancelled."""
    places = asyncio.Semaphore(limit)

    async def placed(call: Callable[[], Awaitable[T]]) -> T:
        async with places:
            return await call()

    outcomes = await asyncio.gather(*(placed(call) for call in calls), return_exceptions=True)
    errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    for error in errors[1:]:
        log.error("another failure, after the first", exc_info=error)
    if errors:
        raise errors[0]
    return [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
