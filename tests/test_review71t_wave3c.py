"""Review 71t, wave3c: review 71l's upstream reader (a line not UTF-8 raised as it comes) and
review 71m's connect end.

wave3c 1: the reader of an upstream's stdout raised a line not UTF-8 during the transport's
shutdown too: the session over (the agent gone, the node stopping), the upstream told to end
(its stdin closed) and writing a last line not UTF-8 as it exits (a goodbye in its locale's
encoding, a tool's output cut), so a session that ended cleanly failed as its end came:
`troth mcp gate` exited 4, `upstream_error` naming an upstream that wrote bytes not UTF-8,
though nothing was read from it any more and no one was waiting. A line read once the shutdown
began reaches no one (the session's stream is closed); it is dropped as the rest of stdout is
drained, and the end is the clean one it was.
"""

from __future__ import annotations

import sys

import anyio
import mcp.client.stdio as sdk_stdio
import pytest

from tests.test_review71l_upstream import BOUND
from tests.test_review71t_refuted import _parameters
from troth.integrations.mcp.upstream import upstream_stdio

_GOODBYE = [
    sys.executable,
    "-c",
    "import sys\nsys.stdin.buffer.read()\nsys.stdout.buffer.write(b'\\xe9t\\xe9\\n')\n",
]
"""An upstream that, its stdin closed, writes a line in Latin-1 and exits."""


def test_a_line_not_utf_8_written_as_the_upstream_ends_does_not_fail_a_clean_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """71t wave3c 1: the session ends cleanly (its block left); the upstream, its stdin
    closed, writes a line not UTF-8 and exits: the transport ends without error."""
    monkeypatch.setattr(sdk_stdio, "PROCESS_TERMINATION_TIMEOUT", 5.0)  # (it exits by itself)

    async def main() -> None:
        with anyio.fail_after(BOUND):
            async with upstream_stdio(_parameters(_GOODBYE)):
                pass

    anyio.run(main)
