"""Review 71l (lead), upstream: an MCP upstream's stdout read failing on bytes not UTF-8.

71l upstream 1: the reader of an upstream's stdout (troth.integrations.mcp.upstream) that met a
line not UTF-8 raised UnicodeDecodeError only after the MCP SDK's `_drain_stdout`, which
discards the rest of stdout until shutdown closes the pipe: while the upstream lived, the
failure reached no one. At the start `troth mcp gate` and `troth mcp serve` named it only when
START_TIMEOUT (30 s) ran out; after the handshake the session read nothing more of the upstream
for as long as it lived, each call waiting on an answer the reader threw away. The reader now
raises at once; the transport's shutdown stops the upstream (as for any failed session).
"""

from __future__ import annotations

import sys

import anyio
import mcp.client.stdio as sdk_stdio
import pytest

from troth.integrations.mcp import local
from troth.integrations.mcp.gate import upstream_error

_GOOD = b'{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":1}}'
BOUND = 20.0
"""How long a test waits for the failure (the upstream sleeps 1,000 s): a hang guard."""


@pytest.fixture(autouse=True)
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's wait for an upstream to exit once its stdin is closed, shortened: these
    upstreams sleep on, and the shutdown's SIGTERM after it ends them (2 s a test else)."""
    monkeypatch.setattr(sdk_stdio, "PROCESS_TERMINATION_TIMEOUT", 0.2)


def _then_sleeps(*lines: bytes) -> list[str]:
    """A Python command writing `lines` on its stdout, each flushed, then sleeping."""
    code = "import sys, time\n"
    for line in lines:
        written = line + b"\n"
        code += f"sys.stdout.buffer.write({written!r}); sys.stdout.flush()\n"
    return [sys.executable, "-c", code + "time.sleep(1000)\n"]


def test_a_line_not_utf_8_mid_session_fails_the_transport_at_once() -> None:
    """71l upstream 1: after a message read, a line not UTF-8 ends the transport with the
    UnicodeDecodeError `upstream_error` names, while the upstream still runs."""
    from mcp import StdioServerParameters

    from troth.integrations.mcp.upstream import upstream_stdio

    command = _then_sleeps(_GOOD, b"\xff")
    parameters = StdioServerParameters(command=command[0], args=command[1:])
    read_first = []

    async def main() -> None:
        with anyio.fail_after(BOUND):
            async with upstream_stdio(parameters) as (read, _write):
                read_first.append(await read.receive())
                await read.receive()  # the failure cancels this wait

    with pytest.raises(BaseExceptionGroup) as caught:  # the transport's task group
        anyio.run(main)
    assert len(read_first) == 1
    failed = upstream_error(caught.value, "up")
    assert failed is not None, caught.value
    assert "not UTF-8" in str(failed)


def test_the_local_gate_names_a_line_not_utf_8_before_its_start_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """71l upstream 1, through `serve_local_gate` (`troth mcp gate`): the failure is named as it
    comes, not when START_TIMEOUT runs out (set past the guard here)."""
    from tests.support.cli import run
    from troth.cli.common import home
    from troth.node import DEFAULT_NODE

    run("identity", "create", "someone")
    monkeypatch.setattr(local, "START_TIMEOUT", 1000)

    async def main() -> None:
        with anyio.fail_after(BOUND):
            await local.serve_local_gate(home(), DEFAULT_NODE, "someone", _then_sleeps(b"\xff"))

    with pytest.raises(OSError, match=r"failed: it wrote bytes that are not UTF-8"):
        anyio.run(main)
