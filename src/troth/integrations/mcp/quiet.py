"""The MCP SDK's log lines about what a peer sent it, at most a few a minute (review 57l, mcp 2;
as troth.transport.ratelog holds the node's own).

The SDK logs, each time, what it cannot read of a peer: a line of an upstream's stdout that is
not JSON-RPC (an ERROR and its traceback, for one byte of the upstream's), a notification whose
params do not validate (a WARNING and its traceback), one a client sent a server with
malformed params. A node logs at INFO into node.log, so an upstream, or a member within its MCP
budget, filled the node's disk at several hundred bytes a byte. `quiet_sdk` gives those
loggers one `SdkThrottle`: at most MCP_SDK_LOG_LINES_PER_MINUTE lines a minute at WARNING or
above, the rest counted (`suppressed`) and summarised in the next line written. Lines below
WARNING pass (the SDK's debug lines, off at INFO).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from troth import limits

__all__ = ["SDK_LOGGERS", "SdkThrottle", "quiet_sdk"]

SDK_LOGGERS: Final = (
    "client",  # mcp.client.session's logger: notifications that do not validate
    "mcp.client.stdio",  # an upstream's line that is not JSON-RPC
    "mcp.shared.jsonrpc_dispatcher",
    "mcp.shared.dispatcher",
    "mcp.server.runner",  # a client's notification with malformed params
)
"""The MCP SDK's loggers that log what a peer sent."""


class SdkThrottle(logging.Filter):
    """At most `per_minute` records a minute at WARNING or above pass; the others are counted,
    and the next one passing says how many were left out."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.per_minute = per_minute
        self.suppressed = 0
        self._clock = clock
        self._window = -60.0
        self._written = 0
        self._left_out = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        now = self._clock()
        if now - self._window >= 60:
            self._window, self._written = now, 0
        if self._written >= self.per_minute:
            self.suppressed += 1
            self._left_out += 1
            return False
        self._written += 1
        if self._left_out:
            record.msg = f"{record.getMessage()} (and {self._left_out} similar lines left out)"
            record.args = None
            self._left_out = 0
        return True


_THROTTLE: Final = SdkThrottle(limits.MCP_SDK_LOG_LINES_PER_MINUTE)


def quiet_sdk() -> SdkThrottle:
    """Give the SDK's loggers (`SDK_LOGGERS`) the process's one throttle, once; the throttle.
    Called where an MCP gate meets a peer: an upstream's transport (`upstream_stdio`,
    `connectable`) and a published server's session (`run_session`)."""
    for name in SDK_LOGGERS:
        logger = logging.getLogger(name)
        if _THROTTLE not in logger.filters:
            logger.addFilter(_THROTTLE)
    return _THROTTLE
