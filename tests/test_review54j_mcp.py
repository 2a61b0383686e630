"""Review 54j, mcp: what review 54g found of the MCP gate but left.

mcp 1: a failure other than an upstream's JSON-RPC error reached the agent as the SDK's answer
to a handler that raised: code 0 and the exception's text. An upstream whose connection was
closed answered `Client must be used within an async context manager`; the decision point's
recorder failing (its storage) answered the storage's own text (a path, SQL); an answer of the
upstream the SDK's client refused (not a `CallToolResult`) was a pydantic ValidationError,
which the SDK answers as the agent's own invalid parameters. The gate now answers each with
its own internal error (`McpGateError`: JSON-RPC internal error, a fixed text naming the
failure's type, no data), the detail logged escaped and cut (`upstream_said`); an allowed call
whose forward failed is recorded allowed, then unanswered; a call whose decision failed is
never forwarded.

mcp 2: one listing of the upstream was bounded at MAX_TOOL_PAGES pages (the rest cut, not
refused), and in nothing else: any number of tools a page, a tool of any size. A listing with
more than MAX_UPSTREAM_TOOLS tools, more than MAX_TOOL_PAGES pages or more than
MAX_UPSTREAM_LISTING_BYTES of tools is now refused (as one the upstream failed), and a tool
larger than MAX_UPSTREAM_TOOL_BYTES is not offered.

mcp 3: the content blocks of an allowed call's result passed their `_meta` (the response's
words, as the result's own `_meta` review 54g stripped) and a resource link its icons (fetched
by a client unasked, as a tool's: review 52b, mcp 1). They are now served without them; their
`annotations` (audience, priority, lastModified: how the tool means its data to be used) pass.

Real MCP clients and servers (the SDK's), in process.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.client._memory import InMemoryTransport
from mcp.client._transport import TransportStreams
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage

from tests.support.gates import TOOLS, T, make_world
from troth import limits
from troth.clock import FixedClock
from troth.errors import StorageError
from troth.gates import DecisionRecord, ListRecorder, Outcome
from troth.integrations.mcp.gate import DENIED_PREFIX, McpGate, gate_server

SECRET = "password=hunter2 at /srv/orders/db.conf"
UNDECLARED = DENIED_PREFIX + "denied: the policy bundle declares no such tool"


def _upstream(
    tools: Callable[[str | None], types.ListToolsResult] | None = None,
    answer: dict[str, Any] | None = None,
) -> Server[Any]:
    """An upstream listing `tools(cursor)` (default: `lookup_order` and `refund`, the bundle's
    shapes), whose calls answer `answer` (wire JSON; default a text)."""

    def default(cursor: str | None) -> types.ListToolsResult:
        listed = [types.Tool(name=n, input_schema=TOOLS[n]) for n in ("lookup_order", "refund")]
        return types.ListToolsResult(tools=listed)

    async def on_list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return (tools or default)(None if params is None else params.cursor)

    async def on_call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        wire = answer or {"content": [{"type": "text", "text": "order o1"}]}
        return types.CallToolResult.model_validate(wire, by_name=False)

    return Server("orders", on_list_tools=on_list_tools, on_call_tool=on_call_tool)


class FailingRecorder(ListRecorder):
    """A recorder whose storage fails from its `fail_at`th record on (its error quoting a
    path, as a database's does)."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at = fail_at
        self.seen = 0

    def record(self, record: DecisionRecord) -> None:
        self.seen += 1
        if self.seen >= self.fail_at:
            raise StorageError(f"disk I/O error: /srv/troth/trace.db ({SECRET})")
        super().record(record)


def _gate(upstream: Any, recorder: ListRecorder | None = None) -> tuple[McpGate, Any]:
    world = make_world()
    point = world.point(world.store(world.bundle()), recorder)
    return McpGate(point, upstream, clock=FixedClock(T + 10)), world.credential(
        world.support_chain, world.support
    )


def _safe(error: types.ErrorData, failure: str) -> None:
    assert (error.code, error.message, error.data) == (
        types.INTERNAL_ERROR,
        DENIED_PREFIX + failure,
        None,
    )


async def _call_error(gate: McpGate, caller: Any) -> types.ErrorData:
    async with Client(gate_server(gate, caller), mode="legacy", cache=None) as agent:
        with pytest.raises(MCPError) as raised:
            await agent.call_tool("lookup_order", {"order_id": "o1"})
    return raised.value.error


def test_a_call_to_a_closed_upstream_is_answered_by_the_gate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    errors: list[types.ErrorData] = []
    recorder = ListRecorder()

    async def main() -> None:
        async with Client(_upstream(), cache=None) as upstream:
            gate, caller = _gate(upstream, recorder)
            await gate.list_tools(caller)
        errors.append(await _call_error(gate, caller))  # its client has exited

    with caplog.at_level(logging.WARNING, logger="troth.mcp"):
        anyio.run(main)
    _safe(errors[0], "the upstream failed the call (RuntimeError)")
    assert [r.decision.outcome for r in recorder.records] == [
        Outcome.ALLOWED,
        Outcome.UNANSWERED,
    ]
    assert "RuntimeError" in recorder.records[1].decision.reason
    logged = [r.getMessage() for r in caplog.records if r.name == "troth.mcp"]
    assert any("async context manager" in line for line in logged)  # for the operator


@asynccontextmanager
async def _answering(
    server: Server[Any], result: dict[str, Any]
) -> AsyncIterator[TransportStreams]:
    """A transport to `server` that replaces the result of each of its tools/call answers
    with `result` (what no SDK server sends: the client's own validation refuses it)."""
    async with InMemoryTransport(server) as (read, write):
        send, receive = anyio.create_memory_object_stream[SessionMessage | Exception](16)

        async def relay() -> None:
            async with send:
                async for message in read:
                    if isinstance(message, SessionMessage):
                        inner = message.message
                        if isinstance(inner, types.JSONRPCResponse) and "content" in inner.result:
                            forged = types.JSONRPCResponse(
                                jsonrpc="2.0", id=inner.id, result=result
                            )
                            message = SessionMessage(message=forged)
                    await send.send(message)

        async with anyio.create_task_group() as tg:
            tg.start_soon(relay)
            yield receive, write
            tg.cancel_scope.cancel()


def test_an_upstream_answer_the_sdk_refuses_is_answered_by_the_gate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not a CallToolResult (an image without its MIME type, the upstream's text in it): the
    gate's error, not the SDK's "Invalid request parameters" (the agent's fault)."""
    errors: list[types.ErrorData] = []
    recorder = ListRecorder()
    forged = {"content": [{"type": "image", "data": SECRET}]}

    async def main() -> None:
        async with Client(_answering(_upstream(), forged), cache=None) as upstream:
            gate, caller = _gate(upstream, recorder)
            errors.append(await _call_error(gate, caller))

    with caplog.at_level(logging.WARNING, logger="troth.mcp"):
        anyio.run(main)
    _safe(errors[0], "the upstream failed the call (ValidationError)")
    assert [r.decision.outcome for r in recorder.records] == [
        Outcome.ALLOWED,
        Outcome.UNANSWERED,
    ]
    logged = [r.getMessage() for r in caplog.records if r.name == "troth.mcp"]
    assert logged
    assert all("\n" not in line for line in logged)


def test_a_decision_point_that_fails_denies_with_the_gates_error() -> None:
    """The recorder's storage fails on the call's record: never forwarded, and the agent gets
    the gate's error, not the storage's text (a path)."""
    errors: list[types.ErrorData] = []
    calls: list[str] = []

    def listed(cursor: str | None) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[types.Tool(name="lookup_order", input_schema=TOOLS["lookup_order"])]
        )

    upstream_server = _upstream(listed)

    async def main() -> None:
        async with Client(upstream_server, cache=None) as upstream:

            class Counting:
                async def list_tools(self, *, cursor: str | None = None) -> Any:
                    return await upstream.list_tools(cursor=cursor)

                async def call_tool(self, name: str, arguments: Any = None) -> Any:
                    calls.append(name)
                    return await upstream.call_tool(name, arguments)

            gate, caller = _gate(Counting(), FailingRecorder(1))
            errors.append(await _call_error(gate, caller))

    anyio.run(main)
    _safe(errors[0], "the call could not be decided (StorageError)")
    assert calls == []


def test_a_caller_whose_credential_cannot_be_read_gets_the_gates_error() -> None:
    """tools/list of a caller whose credential source fails (its node's storage)."""
    errors: list[types.ErrorData] = []

    class Unreadable:
        def current(self, *, now: int) -> Any:
            raise StorageError(f"unable to open database file /home/a/.troth/node.db {SECRET}")

    async def main() -> None:
        async with Client(_upstream(), cache=None) as upstream:
            gate, _ = _gate(upstream)
            async with Client(gate_server(gate, Unreadable()), mode="legacy", cache=None) as agent:
                with pytest.raises(MCPError) as raised:
                    await agent.list_tools()
                errors.append(raised.value.error)

    anyio.run(main)
    _safe(errors[0], "the caller's tools could not be decided (StorageError)")


def test_an_unanswered_record_that_fails_leaves_the_gates_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The upstream is gone and the storage fails on the unanswered record: the agent still
    gets the gate's error for the call; the operator is told the record is missing."""
    errors: list[types.ErrorData] = []
    recorder = FailingRecorder(2)

    async def main() -> None:
        async with Client(_upstream(), cache=None) as upstream:
            gate, caller = _gate(upstream, recorder)
            await gate.list_tools(caller)
        errors.append(await _call_error(gate, caller))

    with caplog.at_level(logging.WARNING, logger="troth.mcp"):
        anyio.run(main)
    _safe(errors[0], "the upstream failed the call (RuntimeError)")
    assert [r.decision.outcome for r in recorder.records] == [Outcome.ALLOWED]
    logged = [r.getMessage() for r in caplog.records if r.name == "troth.mcp"]
    assert any("unanswered" in line and "StorageError" in line for line in logged)


def _many(count: int, *, description: str = "") -> Callable[[str | None], types.ListToolsResult]:
    """One page: `lookup_order` (the bundle's shape), then `count - 1` tools of another
    name, each described by `description`."""
    shape = TOOLS["lookup_order"]

    def tools(cursor: str | None) -> types.ListToolsResult:
        listed = [types.Tool(name="lookup_order", input_schema=shape)]
        listed += [
            types.Tool(name=f"t{i}", description=description, input_schema=shape)
            for i in range(count - 1)
        ]
        return types.ListToolsResult(tools=listed)

    return tools


def _pages(pages: int) -> Callable[[str | None], types.ListToolsResult]:
    """`pages` pages, `lookup_order` on the first, `refund` on the last."""

    def tools(cursor: str | None) -> types.ListToolsResult:
        page = int(cursor or "0")
        listed = []
        if page == 0:
            listed.append(types.Tool(name="lookup_order", input_schema=TOOLS["lookup_order"]))
        if page == pages - 1:
            listed.append(types.Tool(name="refund", input_schema=TOOLS["refund"]))
        more = str(page + 1) if page + 1 < pages else None
        return types.ListToolsResult(tools=listed, next_cursor=more)

    return tools


def _listed_and_called(
    tools: Callable[[str | None], types.ListToolsResult],
) -> tuple[list[str] | types.ErrorData, types.CallToolResult]:
    """What the agent's tools/list answers (names, or the error), and its call of
    `lookup_order`."""
    out: list[Any] = []

    async def main() -> None:
        async with Client(_upstream(tools), cache=None) as upstream:
            gate, caller = _gate(upstream)
            async with Client(gate_server(gate, caller), mode="legacy", cache=None) as agent:
                try:
                    out.append([t.name for t in (await agent.list_tools()).tools])
                except MCPError as exc:
                    out.append(exc.error)
                out.append(await agent.call_tool("lookup_order", {"order_id": "o1"}))

    anyio.run(main)
    return out[0], out[1]


def _refused(listed: Any, called: types.CallToolResult) -> None:
    assert isinstance(listed, types.ErrorData)
    _safe(listed, "the upstream's tools could not be listed (PolicyError)")
    assert called.is_error
    assert called.content == [types.TextContent(type="text", text=UNDECLARED)]


def test_a_listing_of_too_many_tools_is_refused() -> None:
    _refused(*_listed_and_called(_many(limits.MAX_UPSTREAM_TOOLS + 1)))


def test_a_listing_of_as_many_tools_as_allowed_is_read() -> None:
    listed, called = _listed_and_called(_many(limits.MAX_UPSTREAM_TOOLS))
    assert listed == ["lookup_order"]
    assert not called.is_error


def test_a_listing_of_too_many_pages_is_refused() -> None:
    _refused(*_listed_and_called(_pages(limits.MAX_TOOL_PAGES + 1)))


def test_a_listing_of_as_many_pages_as_allowed_is_read() -> None:
    listed, called = _listed_and_called(_pages(limits.MAX_TOOL_PAGES))
    assert listed == ["lookup_order", "refund"]
    assert not called.is_error


def test_a_listing_of_too_many_bytes_is_refused() -> None:
    each = limits.MAX_UPSTREAM_TOOL_BYTES - 1024
    count = limits.MAX_UPSTREAM_LISTING_BYTES // each + 2
    _refused(*_listed_and_called(_many(count, description="d" * each)))


def test_a_tool_too_large_is_not_offered(caplog: pytest.LogCaptureFixture) -> None:
    big = "d" * limits.MAX_UPSTREAM_TOOL_BYTES

    def tools(cursor: str | None) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name="lookup_order", description=big, input_schema=TOOLS["lookup_order"]
                ),
                types.Tool(name="refund", description="Refund.", input_schema=TOOLS["refund"]),
            ]
        )

    with caplog.at_level(logging.WARNING, logger="troth.mcp"):
        listed, called = _listed_and_called(tools)
    assert listed == ["refund"]
    assert called.content == [types.TextContent(type="text", text=UNDECLARED)]
    logged = [r.getMessage() for r in caplog.records if r.name == "troth.mcp"]
    assert any(line.startswith("tool lookup_order: ") and "larger" in line for line in logged)


META = {"io.modelcontextprotocol/related-task": {"taskId": "t1"}, "ui": {"open": "x"}}
NOTE = {"audience": ["user"], "priority": 0.25, "lastModified": "2026-12-05T13:00:00Z"}
BLOCKS: dict[str, list[dict[str, Any]]] = {
    "content": [
        {"type": "text", "text": "order o1", "annotations": NOTE, "_meta": META},
        {"type": "image", "data": "aGk=", "mimeType": "image/png", "_meta": META},
        {"type": "audio", "data": "aGk=", "mimeType": "audio/wav", "_meta": META},
        {
            "type": "resource_link",
            "uri": "file:///orders/o1",
            "name": "o1",
            "icons": [{"src": "https://tracker.example/pixel.png"}],
            "annotations": NOTE,
            "_meta": META,
        },
        {
            "type": "resource",
            "resource": {"uri": "file:///orders/o1", "text": "o1", "_meta": META},
            "annotations": NOTE,
            "_meta": META,
        },
    ]
}


def test_content_blocks_are_served_without_their_meta() -> None:
    results: list[types.CallToolResult] = []

    async def main() -> None:
        async with Client(_upstream(answer=BLOCKS), cache=None) as upstream:
            gate, caller = _gate(upstream)
            async with Client(gate_server(gate, caller), mode="legacy", cache=None) as agent:
                results.append(await agent.call_tool("lookup_order", {"order_id": "o1"}))

    anyio.run(main)
    wire = results[0].model_dump(by_alias=True, exclude_none=True, mode="json")["content"]
    expected = []
    for block in BLOCKS["content"]:
        served = {k: v for k, v in block.items() if k not in ("_meta", "icons")}
        if "resource" in served:
            served["resource"] = {k: v for k, v in served["resource"].items() if k != "_meta"}
        expected.append(served)
    assert wire == expected  # the annotations kept, as given
