"""Review 71m, ci: what cutting CI time found in the product.

ci 1: `troth mcp connect` did not end when its agent closed its stdin. Once the agent's
stream ended, connect waited for the server's stream to end too, which over a real channel
(`ChannelTransport`) ends only when the channel closes or the server ends the session: never
while the node serves. The MCP client's shutdown (close the server's stdin, wait, then SIGTERM)
thus always went to its SIGTERM (`on_sigterm`), the MCP SDK's 2 s grace waited out each time
(every stdio end-to-end test of connect paid it). The fake transport of review 66c's test ended
its server's stream with the client's, so it did not see it. Now connect ends the session once
its agent's stream ended and the requests read from it are answered (within
MCP_GATE_DRAIN_SECONDS, as at SIGTERM).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.shared.message import SessionMessage

from tests.test_review66c_mcp import _agent, _fake_node, _serve
from troth.integrations.mcp import connect as connect_module


class _Quiet:
    """The server's side as a channel's transport is: its stream to the client ends only when
    the channel closes or the server ends the session (neither happens here), not when the
    client's stream ends."""

    async def __aenter__(self) -> tuple[Any, Any]:
        self.server, read = anyio.create_memory_object_stream[SessionMessage | Exception](1)
        write, self.client = anyio.create_memory_object_stream[SessionMessage](1)
        return read, write

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        self.client.close()


def test_connect_ends_when_its_agent_closes_its_stdin_and_the_server_says_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """71m ci 1: the agent closes its stdin; the server's stream stays open (a channel that
    still runs): connect ends, without error, at once (not at its client's SIGTERM)."""
    _fake_node(monkeypatch, ends=False)

    @contextlib.asynccontextmanager
    async def connect(runtime: object, identity: str, to: str, **_: object) -> AsyncIterator[Any]:
        yield _Quiet()

    monkeypatch.setattr(connect_module, "connect", connect)
    outcome: list[BaseException | None] = []
    with _agent(monkeypatch) as write:
        os.close(write)  # the agent goes away
        served = threading.Thread(target=_serve, args=(tmp_path, outcome), daemon=True)
        served.start()
        served.join(5)
    assert not served.is_alive(), "troth mcp connect outlived its agent's stdin"
    assert outcome == [None]
