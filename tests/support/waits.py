"""Waiting in async tests for what another task or thread does (no timing asserted)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Return once `condition()` holds, checking every few milliseconds (TimeoutError after
    `timeout` seconds: the test fails)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.002)
