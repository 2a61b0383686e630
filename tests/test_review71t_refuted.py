"""Review 71t, wave3c: attacks on review 71l's upstream reader (a line not UTF-8 raised as it
comes) and review 71m's connect end (it ends when its agent closes stdin) that did not work.

Upstream (troth.integrations.mcp.upstream):
- a character split across two reads of the upstream's stdout is joined before it is decoded
  (lines are decoded whole): no failure;
- a line of JSON-RPC and a line not UTF-8 in one chunk: the message is delivered, then the
  transport fails;
- an upstream flooding its stdout after the bad line (no drain reads it: its pipe full, it
  blocks): the transport's shutdown still ends it (stdin closed, then its group SIGTERMed);
- the published server (`troth mcp serve`, node/services/mcp.py) reads with the same reader:
  a bad line at the handshake fails its publication at once, named, not at START_TIMEOUT;
- a call allowed and under way at the upstream when the bad line comes is recorded
  unanswered after its allowed record.

Connect (troth.integrations.mcp.connect):
- an agent that sends a request and closes its stdin at once gets its answer, one the
  server gives only after the agent's stream ended, before connect ends;
- a call the server never answers holds connect's end no longer than the drain bound.
(SIGTERM during the drain calls `agent.stop()` again, which changes nothing: the drain is the
one of the agent's end, as the module says; stdin closed before the handshake is 71m's test.)
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.message import SessionMessage

from tests.support.gates import TOOLS
from tests.support.nodes import MemNet, run_memnet
from tests.test_review54j_mcp import _gate
from tests.test_review58j_mcp import HANDSHAKE
from tests.test_review66c_mcp import _agent, _fake_node, _line, _serve
from tests.test_review71l_upstream import (  # noqa: F401 - `short_grace` is a fixture
    _GOOD,
    BOUND,
    _then_sleeps,
    short_grace,
)
from troth import limits
from troth.gates import ListRecorder, Outcome
from troth.integrations.mcp import connect as connect_module
from troth.integrations.mcp.gate import upstream_error
from troth.integrations.mcp.upstream import upstream_stdio
from troth.node.services import mcp as mcp_service
from troth.node.services.mcp import publish_upstream


def _parameters(command: list[str]) -> StdioServerParameters:
    return StdioServerParameters(command=command[0], args=command[1:])


def _writes(*chunks: bytes, then: str = "time.sleep(1000)") -> list[str]:
    """A Python command writing each of `chunks` flushed, a pause between them, then `then`."""
    code = "import sys, time\n"
    for chunk in chunks:
        code += f"sys.stdout.buffer.write({chunk!r}); sys.stdout.flush(); time.sleep(0.05)\n"
    return [sys.executable, "-c", code + then + "\n"]


def _fails_after(command: list[str], reads: int) -> list[SessionMessage | Exception]:
    """Reads `reads` items of the upstream `command`, then expects the transport to fail with
    the not-UTF-8 error `upstream_error` names; the items read."""
    read_first: list[SessionMessage | Exception] = []

    async def main() -> None:
        with anyio.fail_after(BOUND):
            async with upstream_stdio(_parameters(command)) as (read, _write):
                for _ in range(reads):
                    read_first.append(await read.receive())
                await read.receive()  # the failure cancels this wait

    with pytest.raises(BaseExceptionGroup) as caught:
        anyio.run(main)
    failed = upstream_error(caught.value, "up")
    assert failed is not None, caught.value
    assert "not UTF-8" in str(failed)
    return read_first


def test_a_character_split_across_two_reads_is_read_whole() -> None:
    """71t refuted: a UTF-8 character whose bytes come in two reads (the upstream flushes
    between them) is decoded once its line ends: the message is read, nothing fails."""
    message = (
        b'{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"\xc3'
    )
    got: list[SessionMessage | Exception] = []

    async def main() -> None:
        with anyio.fail_after(BOUND):
            async with upstream_stdio(_parameters(_writes(message, b'\xa9"}}\n'))) as (read, _):
                got.append(await read.receive())

    anyio.run(main)
    assert isinstance(got[0], SessionMessage), got
    notification = got[0].message
    assert isinstance(notification, types.JSONRPCNotification)
    assert notification.params is not None
    assert notification.params["data"] == "\u00e9"


def test_a_message_then_a_line_not_utf_8_in_one_chunk_delivers_the_message_first() -> None:
    """71t refuted: a JSON-RPC line and a line not UTF-8 written at once (one read): the
    message reaches the session, then the transport fails."""
    read_first = _fails_after(_writes(_GOOD + b"\n\xff\n"), reads=1)
    assert isinstance(read_first[0], SessionMessage), read_first


def test_an_upstream_flooding_after_its_bad_line_is_ended() -> None:
    """71t refuted: after the bad line the upstream writes without end; nothing drains its
    stdout, so it blocks on a full pipe and never exits by itself: the transport's shutdown
    ends it all the same (the SDK's grace, shortened here, then its group SIGTERMed)."""
    flood = "while True: sys.stdout.buffer.write(b'x' * 65536); sys.stdout.flush()"
    _fails_after(_writes(b"\xff\n", then=flood), reads=0)


def test_the_published_server_names_a_line_not_utf_8_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """71t refuted: `publish_upstream` (the node's `troth mcp serve` path) reads the upstream
    with the same reader: a line not UTF-8 at the handshake fails the publication with the
    OSError naming it, long before START_TIMEOUT (set past the guard)."""
    monkeypatch.setattr(mcp_service, "START_TIMEOUT", 1000)

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        with anyio.fail_after(BOUND), pytest.raises(OSError, match="not UTF-8"):
            await publish_upstream(net.hub, "orders", _parameters(_then_sleeps(b"\xff")))
        assert "mcp.orders" not in net.hub.status()["services"]

    run_memnet(test, tmp_path)


_GARBLING = (
    HANDSHAKE
    + """
sys.stdin.readline()  # notifications/initialized
for line in sys.stdin:
    message = json.loads(line)
    if message.get("method") == "tools/list":
        tools = [{"name": "lookup_order", "inputSchema": json.loads(sys.argv[1])}]
        send({"jsonrpc": "2.0", "id": message["id"], "result": {"tools": tools}})
    elif message.get("method") == "tools/call":  # the call unanswered: a line not UTF-8
        sys.stdout.buffer.write(b"\\xff\\n")
        sys.stdout.flush()
        time.sleep(1000)
"""
)


def test_a_call_under_way_when_the_bad_line_comes_is_recorded_unanswered(
    tmp_path: Path,
) -> None:
    """71t refuted: the upstream answers an allowed call with a line not UTF-8: the transport
    fails at once and the call is recorded unanswered after its allowed record."""
    import json

    script = tmp_path / "garbling.py"
    script.write_text(_GARBLING)
    upstream = StdioServerParameters(
        command=sys.executable, args=[str(script), json.dumps(TOOLS["lookup_order"])]
    )
    recorder = ListRecorder()

    async def main() -> None:
        with anyio.fail_after(BOUND):
            async with Client(upstream_stdio(upstream), mode="legacy", cache=None) as client:
                gate, caller = _gate(client, recorder)
                try:
                    await gate.call_tool(caller, "lookup_order", {"order_id": "o1"})
                finally:
                    with anyio.CancelScope(shield=True):
                        await gate.close()

    with pytest.raises(BaseExceptionGroup) as caught:
        anyio.run(main)
    assert upstream_error(caught.value, "up") is not None, caught.value
    outcomes = [r.decision.outcome for r in recorder.records]
    assert outcomes == [Outcome.ALLOWED, Outcome.UNANSWERED], outcomes


class _AnswersAtTheEnd:
    """The server's side as a channel's is (its stream ends only with the channel), answering
    each request it read only once the client's stream ended (`answers`), or never."""

    def __init__(self, answers: bool) -> None:
        self.answers = answers

    async def __aenter__(self) -> tuple[Any, Any]:
        self.to_client, read = anyio.create_memory_object_stream[SessionMessage | Exception](8)
        write, self.from_client = anyio.create_memory_object_stream[SessionMessage](8)
        self.group = anyio.create_task_group()
        await self.group.__aenter__()
        self.group.start_soon(self._serve)
        return read, write

    async def _serve(self) -> None:
        read: list[types.RequestId] = []
        async for message in self.from_client:
            if isinstance(message.message, types.JSONRPCRequest):
                read.append(message.message.id)
        for ident in read if self.answers else ():
            answer = types.JSONRPCResponse(jsonrpc="2.0", id=ident, result={"late": True})
            await self.to_client.send(SessionMessage(answer))

    async def __aexit__(self, *exc: object) -> None:
        self.group.cancel_scope.cancel()
        await self.group.__aexit__(None, None, None)
        self.to_client.close()
        self.from_client.close()


def _connect_after_a_request(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, answers: bool
) -> tuple[list[BaseException | None], bytes]:
    """connect served to an agent that sends one request and closes its stdin at once: its
    outcome and what it wrote to the agent."""
    _fake_node(monkeypatch, ends=False)

    @contextlib.asynccontextmanager
    async def connect(runtime: object, identity: str, to: str, **_: object) -> AsyncIterator[Any]:
        yield _AnswersAtTheEnd(answers)

    monkeypatch.setattr(connect_module, "connect", connect)
    outcome: list[BaseException | None] = []
    with _agent(monkeypatch) as write:
        os.write(write, _line({"jsonrpc": "2.0", "id": 7, "method": "ping"}))
        os.close(write)  # the agent goes away at once
        served = threading.Thread(target=_serve, args=(tmp_path, outcome), daemon=True)
        served.start()
        served.join(BOUND)
        assert not served.is_alive(), "connect outlived its agent"
        sink = sys.stdout.buffer
        assert isinstance(sink, io.BytesIO)  # (`_agent`'s)
        written = sink.getvalue()
    return outcome, written


def test_connect_writes_the_answer_to_a_request_sent_just_before_stdin_closed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """71t refuted: the agent sends a request and closes its stdin; the server answers after
    the agent's stream ended: the answer is written before connect ends, exit 0."""
    outcome, written = _connect_after_a_request(monkeypatch, tmp_path, answers=True)
    assert outcome == [None]
    assert b'"id":7' in written, written
    assert b'"late":true' in written


def test_connect_waits_for_a_call_never_answered_no_longer_than_the_drain(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """71t refuted: the server never answers the request read: connect ends without error
    once the drain bound passed (shortened here), nothing written."""
    monkeypatch.setattr(limits, "MCP_GATE_DRAIN_SECONDS", 0.2)
    outcome, written = _connect_after_a_request(monkeypatch, tmp_path, answers=False)
    assert outcome == [None]
    assert written == b"", written
