"""Logging that a hostile peer cannot turn into a disk-filling flood: at most a few lines a
minute per limiter, the rest counted and summarised in the next line that is written; and the
event-loop exception-handler filter that does the same for asyncio's accept() errors."""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Callable
from typing import Any

__all__ = ["RateLimitedLog", "install_accept_error_filter"]

_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class RateLimitedLog:
    """At most `per_minute` lines a minute to `logger`; the others are counted, and the next
    line written says how many were left out. `suppressed` counts them all."""

    def __init__(
        self,
        logger: logging.Logger,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.per_minute = per_minute
        self.suppressed = 0
        self._clock = clock
        self._window = -60.0
        self._written = 0
        self._left_out = 0  # since the last line written

    def log(self, level: int, message: str, *args: object) -> bool:
        """Write the line if the limit allows (True) or count it (False). A line the logger
        would not write at its level costs nothing (review 60f, listener 3: at WARNING, a peer's
        junk, each dropped with an INFO line, took the minute's lines, and the warnings about
        refused and evicted connections were only counted), nor one no handler it reaches writes
        (review 60i, listener 1: handlers at WARNING under a logger at INFO)."""
        if not _written(self.logger, level):
            return False
        now = self._clock()
        if now - self._window >= 60:
            self._window, self._written = now, 0
        if self._written >= self.per_minute:
            self.suppressed += 1
            self._left_out += 1
            return False
        self._written += 1
        if self._left_out:
            message = f"{message} (and {self._left_out} similar lines left out)"
            self._left_out = 0
        self.logger.log(level, message, *args)
        return True


def _written(logger: logging.Logger, level: int) -> bool:
    """Whether a line at `level` to `logger` is written: its level lets the line through, and a
    handler the line reaches (the logger's, its parents' while they propagate; Python's
    last-resort one when there are none) is at that level or below (`Logger.callHandlers`)."""
    if not logger.isEnabledFor(level):
        return False
    current: logging.Logger | None = logger
    found = False
    while current is not None:
        for handler in current.handlers:
            found = True
            if level >= handler.level:
                return True
        current = current.parent if current.propagate else None
    last = logging.lastResort
    return not found and last is not None and level >= last.level


class _AcceptErrorFilter:
    """A loop exception handler: accept() failing for lack of descriptors or memory (asyncio
    pauses that listener for a second and retries, so it recovers once descriptors free up)
    is logged in one line, a few times a minute; everything else goes to the handler that
    was there before."""

    def __init__(self, previous: Any, log: RateLimitedLog) -> None:
        self.previous = previous
        self.log = log

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if isinstance(error, OSError) and error.errno in _RESOURCE_ERRORS:
            self.log.log(logging.WARNING, "accepting connections paused: %s", error)
            return
        if self.previous is not None:
            self.previous(loop, context)
        else:
            loop.default_exception_handler(context)


def install_accept_error_filter(
    loop: asyncio.AbstractEventLoop, logger: logging.Logger, per_minute: int
) -> RateLimitedLog:
    """Install the accept-error filter on `loop` (once per loop); its limiter."""
    current = loop.get_exception_handler()
    if isinstance(current, _AcceptErrorFilter):
        return current.log
    handler = _AcceptErrorFilter(current, RateLimitedLog(logger, per_minute))
    loop.set_exception_handler(handler)
    return handler.log
