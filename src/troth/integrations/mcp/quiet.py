"""The MCP SDK's log lines about what a peer sent it, at most a few a minute (review 57l, mcp 2;
as troth.transport.ratelog holds the node's own).

The SDK logs, each time, what it cannot read of a peer: a line of an upstream's stdout that is
not JSON-RPC (an ERROR and its traceback, for one byte of the upstream's), a notification whose
params do not validate (a WARNING and its traceback), one a client sent a server with
malformed params. A node logs at INFO into node.log, so an upstream, or a member within its MCP
budget, filled the node's disk at several hundred bytes a byte. `quiet_sdk` gives those
loggers one `SdkThrottle`: at most MCP_SDK_LOG_LINES_PER_MINUTE lines a minute at WARNING or
above, the rest counted (`suppressed`) and summarised in the next line written. Lines below
WARNING pass (the SDK's debug lines, off at INFO), and so do the lines of a "client" logger
that the SDK's code did not write: the name is no package's, an application's may be it
(review 57s, mcp 1). troth's own loggers (`troth.*`) carry no throttle.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any, Final

import mcp

from troth import limits
from troth.transport.ratelog import RateLimitedLog

__all__ = ["SDK_LOGGERS", "SdkThrottle", "quiet_sdk"]

SDK_LOGGERS: Final = (
    "client",  # mcp.client.session's logger: notifications that do not validate
    "mcp.client.stdio",  # an upstream's line that is not JSON-RPC
    "mcp.shared.jsonrpc_dispatcher",
    "mcp.shared.dispatcher",
    "mcp.server.runner",  # a client's notification with malformed params
)
"""The MCP SDK's loggers that log what a peer sent."""

_SHARED_NAME: Final = "client"
"""The one of `SDK_LOGGERS` that is no package's name: an application or another library may log
as "client" too, and only the SDK's own lines under it are throttled (review 57s, mcp 1)."""
_SDK_DIR: Final = os.path.dirname(os.path.abspath(mcp.__file__)) + os.sep


class _Passed(logging.Logger):
    """Where an `SdkThrottle`'s limiter writes the line it lets pass: only kept (the record
    itself is what passes)."""

    said: str | None = None

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        self.said = str(msg)


class SdkThrottle(logging.Filter):
    """At most `per_minute` records a minute at WARNING or above pass (a `RateLimitedLog`
    decides); the others are counted, and the next one passing says how many were left out.
    A record of the "client" logger passes unless the SDK's code logged it (`_SHARED_NAME`)."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._passed = _Passed("troth.mcp.quiet")
        self.limiter = RateLimitedLog(self._passed, per_minute, clock=clock)

    @property
    def suppressed(self) -> int:
        """The records left out so far."""
        return self.limiter.suppressed

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        if record.name == _SHARED_NAME and not _from_sdk(record):
            return True  # another code's "client" logger, not the SDK's (review 57s, mcp 1)
        self._passed.said = None
        if not self.limiter.log(record.levelno, ""):
            return False
        if self._passed.said:  # " (and N similar lines left out)"
            record.msg = record.getMessage() + self._passed.said
            record.args = None
        return True


def _from_sdk(record: logging.LogRecord) -> bool:
    """Whether the MCP SDK's code logged `record` (its source file is in the `mcp` package)."""
    return os.path.abspath(record.pathname).startswith(_SDK_DIR)


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
