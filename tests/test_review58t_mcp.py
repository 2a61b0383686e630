"""Review 58t, mcp 1 and 2: a published MCP server's session held its answers whole while its
client was slow to take them, bounded by their count only (review 58j's gap).

`run_session` (troth.integrations.mcp.channel) queued each answer the MCP SDK's server wrote
(MAX_MCP_QUEUE of them, and as many again waiting: review 58f, mcp 1) as the SDK's message
object, and made it a frame only when the way back took it. mcp 1: an answer over MAX_MCP_FRAME
can never be sent (it became a JSON-RPC error there), yet it waited whole, and an upstream's
line may be up to MAX_MCP_UPSTREAM_LINE (64 MiB): one member's 8 sessions could make the node
hold ~8 x 128 x 64 MiB. The gate now refuses a tools/call result over MAX_MCP_RESULT (what a
frame carries) as the upstream answers it, before it waits anywhere: the call is answered with
the gate's error naming the limit and recorded unanswered after its allowed record. mcp 2:
answers under the limit held up to 128 x 1 MiB per session; a session now holds its answers
as frames, at most MAX_MCP_SESSION_BACKLOG bytes of them, past which its client has fallen
behind and the session ends.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from typing import Any

import anyio
import mcp_types as types
from mcp import Client
from mcp.server import MCPServer

from tests.support.gates import make_world
from tests.support.mcp_orders import text
from tests.test_review47m_mcp_cancel import Blocking, gate_of, outcomes
from tests.test_review58f_mcp import _settle, offer, served
from tests.test_review58j_refuted import _answers
from troth import limits
from troth.gates import ListRecorder
from troth.integrations.mcp.frames import McpFrame
from troth.integrations.mcp.gate import gate_server

SERVED_EMPTY = len(
    json.dumps(
        {"content": [{"type": "text", "text": ""}], "isError": False, "resultType": "complete"},
        separators=(",", ":"),
    )
)
"""The bytes of an allowed call's result as the gate serves it, its one text block empty (the
compact JSON the gate measures: a client of a protocol version before 2026-07-28 is sent it
without its resultType, 24 bytes less)."""


def replying(result: Callable[[], types.CallToolResult]) -> Blocking:
    """An upstream whose lookup_order answers at once with `result()`, counted in `answered`."""
    upstream = Blocking()
    upstream.app = MCPServer("orders")

    @upstream.app.tool()
    def lookup_order(order_id: str) -> types.CallToolResult:
        """Look up an order."""
        upstream.answered += 1
        return result()

    return upstream


def answering(size: int) -> Blocking:
    """An upstream whose lookup_order answers with one text block of `size` characters (a new
    string each call)."""
    return replying(
        lambda: types.CallToolResult(content=[types.TextContent(type="text", text="x" * size)])
    )


def lookup(ident: int) -> dict[str, Any]:
    params = {"name": "lookup_order", "arguments": {"order_id": f"o{ident}"}}
    return {"jsonrpc": "2.0", "id": ident, "method": "tools/call", "params": params}


class Session:
    """What a session of the support agent came to: the bytes it held once its client had
    sent its calls and the upstream answered them all (`held`, tracemalloc), the frames its
    client took once it began to read (`frames`), whether it ended, and the trace."""

    def __init__(self) -> None:
        self.held = 0
        self.answered = 0  # the calls the upstream answered before the client read
        self.frames: list[bytes] = []
        self.ended: list[bool] = []
        self.recorder = ListRecorder()

    def answers(self) -> dict[int, dict[str, Any]]:
        """The answers the client took, by id (the handshake's left out)."""
        return {a["id"]: a for a in _answers(self.frames) if a.get("id") not in (None, 0)}


def slow_client(
    upstream: Blocking,
    calls: int,
    *,
    taken: int | None = None,
    request: Callable[[int], dict[str, Any]] = lookup,
    slow: bool = True,
    answered: int | None = None,
) -> Session:
    """A session whose client sends `calls` requests (`request(ident)`: lookups of
    `upstream`) and takes no answer (`slow`: its way back waits) until the upstream answered
    `answered` of them (None: all; the others wait in the gate for room in the session's
    backlog, `room_for`: review 59a, mcp 1) or the session ended (within 5 s), then takes
    `taken` frames (None: the handshake's answer and every call's) within 5 s."""
    release = anyio.Event()
    if not slow:
        release.set()
    seen = Session()
    want = calls + 1 if taken is None else taken
    asked = calls if answered is None else answered
    ending: list[bytes] = []

    async def way_back(frame: bytes) -> bool:
        if McpFrame.decode(frame).message is None:
            ending.append(frame)  # the session ends: it waits to tell the client
        await release.wait()
        seen.frames.append(frame)
        return True

    async def main() -> None:
        async with served(way_back, upstream, seen.recorder, release) as (inbound, ended):
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                for ident in range(1, calls + 1):
                    await _settle()
                    if not offer(inbound, request(ident)):
                        break
                with anyio.move_on_after(5):
                    while upstream.answered < asked and not ending:
                        await anyio.sleep(0.01)
                for _ in range(10):  # every answer written where it waits
                    await anyio.sleep(0.01)
                seen.held = tracemalloc.get_traced_memory()[0] - before
                seen.answered = upstream.answered
            finally:
                tracemalloc.stop()
            release.set()
            with anyio.move_on_after(5):
                while len(seen.frames) < want and not ended:
                    await anyio.sleep(0.01)
            seen.ended.extend(ended)

    anyio.run(main)
    return seen


def room_for(size: int) -> int:
    """The answers of lookups (ids of two digits at most) of `size` characters each that a
    session holds for a client that reads none before its next call waits for room: each
    after the first is promised MAX_MCP_FRAME of MAX_MCP_SESSION_BACKLOG beside those waiting
    (troth.integrations.mcp.room; review 59a, mcp 1)."""
    frame = 40 + 33 + 2 + SERVED_EMPTY + size  # the frame's header, the response's and its id
    room = limits.MAX_MCP_SESSION_BACKLOG - limits.MAX_MCP_FRAME - limits.MCP_AT_ONCE_BYTES
    return 1 + room // frame  # (review 59h, mcp 1: room kept for answers given at once)


def _gate_errors(seen: Session) -> list[str]:
    return [a["error"]["message"] for a in seen.answers().values() if "error" in a]


def test_answers_over_a_frame_are_not_held_while_the_client_reads_slowly() -> None:
    """mcp 1: CALLS answers over a frame each; before, every one waited whole (~1 MiB each)
    behind a client that did not read yet, only to be replaced by an error on its way out."""
    calls = 12
    seen = slow_client(answering(limits.MAX_MCP_FRAME), calls)
    assert seen.held < limits.MAX_MCP_FRAME, seen.held
    assert seen.ended == []
    assert len(seen.answers()) == calls
    limit = f"over the {limits.MAX_MCP_RESULT}-byte limit"
    assert all(m.startswith("troth: ") and limit in m for m in _gate_errors(seen))
    assert len(_gate_errors(seen)) == calls


def test_an_answer_one_byte_over_the_limit_is_refused_and_recorded_unanswered() -> None:
    """mcp 1: a result one byte over MAX_MCP_RESULT is the gate's error naming the limit (the
    upstream's text never reaches the client), and the call is recorded allowed, then
    unanswered: it ran, its result was not served."""
    seen = slow_client(answering(limits.MAX_MCP_RESULT - SERVED_EMPTY + 1), 1)
    assert seen.ended == []
    (answer,) = seen.answers().values()
    assert "result" not in answer
    assert f"{limits.MAX_MCP_RESULT}-byte limit" in answer["error"]["message"]
    assert outcomes(seen.recorder) == [("lookup_order", "allowed"), ("lookup_order", "unanswered")]
    refused = seen.recorder.records[1]
    assert refused.request == seen.recorder.records[0].request
    assert f"{limits.MAX_MCP_RESULT}-byte limit" in refused.decision.reason


def test_a_session_holds_at_most_its_backlog_of_answers() -> None:
    """mcp 2: honest answers of half a frame each, CALLS of them (fewer than the 128 a session
    may leave waiting), held whole behind a client that reads none: ~20 MiB before. The
    session now holds at most MAX_MCP_SESSION_BACKLOG bytes of answers: the calls it has no
    room for wait in the gate, undecided, until the client takes its answers (review 59a, mcp
    1: it ended, as fallen behind), then every one is answered, once."""
    calls, size = 40, limits.MAX_MCP_RESULT // 2
    seen = slow_client(answering(size), calls, answered=room_for(size))
    assert seen.held <= limits.MAX_MCP_SESSION_BACKLOG + limits.MAX_MCP_FRAME, seen.held
    assert seen.answered == room_for(size) < calls
    assert seen.ended == []
    assert sorted(seen.answers()) == list(range(1, calls + 1))
    assert len(_answers(seen.frames)) == calls + 1  # the handshake's answer, one for each call


def test_an_answer_of_exactly_the_limit_reaches_the_client_whole() -> None:
    """The limit is the result's JSON as the gate serves it: one of exactly MAX_MCP_RESULT bytes
    goes out in its frame, whole, recorded allowed only."""
    size = limits.MAX_MCP_RESULT - SERVED_EMPTY
    seen = slow_client(answering(size), 1)
    (answer,) = seen.answers().values()
    result = answer["result"]
    assert len(json.dumps(result, separators=(",", ":"))) <= limits.MAX_MCP_RESULT
    assert result["content"][0]["text"] == "x" * size
    assert not result["isError"]
    assert outcomes(seen.recorder) == [("lookup_order", "allowed")]


def test_the_calls_a_session_runs_at_once_may_all_wait_whole() -> None:
    """The backlog leaves room for the answers of the MAX_MCP_CALLS_PER_SESSION calls a
    session may have at the upstream at once, each as large as the limit, its client slow to
    take them: every one is answered whole, and the session goes on."""
    calls = limits.MAX_MCP_CALLS_PER_SESSION
    size = limits.MAX_MCP_RESULT - SERVED_EMPTY
    seen = slow_client(answering(size), calls)
    assert seen.ended == []
    answers = seen.answers()
    assert sorted(answers) == list(range(1, calls + 1))
    assert all(len(a["result"]["content"][0]["text"]) == size for a in answers.values())


def test_the_stdio_gate_serves_answers_over_the_limit() -> None:
    """The limit is a channel session's (its frames): the gate served over stdio (`troth mcp
    gate`, here its in-process equal) still serves a result over MAX_MCP_RESULT whole."""
    size = limits.MAX_MCP_RESULT + 1

    async def main() -> None:
        world = make_world()
        support = world.credential(world.support_chain, world.support)
        recorder = ListRecorder()
        async with (
            gate_of(world, answering(size), recorder) as gate,
            Client(gate_server(gate, support), mode="legacy", cache=None) as agent,
        ):
            result = await agent.call_tool("lookup_order", {"order_id": "o1"})
        assert not result.is_error
        assert len(text(result)) == size
        assert outcomes(recorder) == [("lookup_order", "allowed")]

    anyio.run(main)
