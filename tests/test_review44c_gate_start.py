"""Review 44c, gate start (left by the review, fixed by the lead): `troth mcp gate` whose
upstream never answers the MCP handshake (`--upstream "sleep 1000"`) hung with no output, even
with its stdin closed: `serve_local_gate` waited for the SDK's `initialize` without a bound,
where the node's published servers give an upstream `START_TIMEOUT` (troth.node.services.mcp)
to start. The gate now gives its upstream the same, then fails with an OSError naming it (exit
4, I/O) and ends the upstream. Here the bound is made short; nothing is timed.
"""

from __future__ import annotations

import sys

import anyio
import pytest

from tests.support.cli import run
from troth.cli.common import home
from troth.integrations.mcp import local
from troth.node import DEFAULT_NODE

SILENT = [sys.executable, "-c", "import time; time.sleep(1000)"]


def test_an_upstream_that_never_answers_the_handshake_is_a_typed_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Gate start 1."""
    run("identity", "create", "someone")
    monkeypatch.setattr(local, "START_TIMEOUT", 0.5)
    with pytest.raises(OSError, match=r"did not answer the MCP handshake within 0\.5 s"):
        anyio.run(local.serve_local_gate, home(), DEFAULT_NODE, "someone", SILENT)
