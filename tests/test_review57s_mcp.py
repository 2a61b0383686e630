"""Review 57s, mcp: review 57l's throttle of the MCP SDK's log lines (troth.integrations.mcp.quiet).

1. The SDK's client session logs through `logging.getLogger("client")`, a name of no package:
   `quiet_sdk` put the throttle on that logger, so once an MCP gate met a peer, every WARNING
   any other code of the process logs as "client" (an application embedding troth, another
   library) passed at most MCP_SDK_LOG_LINES_PER_MINUTE a minute, shared with what an upstream
   makes the SDK log: a hostile upstream silenced them. Was a strict xfail.
"""

from __future__ import annotations

import logging

import pytest

from troth import limits
from troth.integrations.mcp.quiet import quiet_sdk


def test_another_codes_client_logger_is_not_throttled(caplog: pytest.LogCaptureFixture) -> None:
    """1: an application's own "client" logger keeps every warning after `quiet_sdk`."""
    caplog.set_level(logging.INFO)
    quiet_sdk()
    lines = 2 * limits.MCP_SDK_LOG_LINES_PER_MINUTE + 1
    for n in range(lines):
        logging.getLogger("client").warning("the application's payment client failed (%d)", n)
    ours = [r for r in caplog.records if r.name == "client"]
    assert len(ours) == lines
