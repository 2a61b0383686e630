"""Review 62c, mcp: adversarial review of the MCP integration (the gate, a published server's
sessions over secure channels).

1. A client of the 2026-07-28 protocol (each request carrying its own envelope in `_meta`, no
   `initialize`) gets every result stamped with the gate's `serverInfo` in the result's
   `_meta` (the SDK's runner), which the gate's limit of a result (`result_limit`, review 58v,
   mcp 2) did not count: with a long request id, a result the narrowed limit let through made
   a frame over MAX_MCP_FRAME, so the client got the channel's "message is over the limit"
   error in its place while the trace recorded the call allowed only (served).
2. The MCP SDK's client (the gate's, to its upstream) keeps every tool it reads on a page of
   a paged listing (its output schema, for checking results; on the 2026-07-28 protocol its
   header map too) and forgets one only on a listing of a single page: "cursor pages only ever
   add". An upstream listing in pages, new names at each listing (or over the gate's limits,
   refused), grew the node's memory at every tools/list any caller sent, without bound (the
   gate bounds what it keeps itself: review 51f, mcp 2; review 54j, mcp 2).
3. The same through calls: on a 2026-07-28 connection to the upstream (an in-process one, or
   one that speaks it), an allowed call the upstream answers with HEADER_MISMATCH (-32020) makes
   the SDK's client list the upstream again (up to 100 pages, none of the gate's limits) and
   send the call once more; every tool of those pages was kept, call after call.
4. The SDK's client checked each allowed call's structured content against the upstream's
   own output schema, in the event loop the node's every service runs on: an upstream whose
   output schema has a backtracking `pattern` (`^(a+)+$`) and whose result is 30 `a` and a `!`
   stalled the node for a minute, each character more doubling it (seen: 24 characters, one
   second with no other task run). The regex is the upstream's; the gate ran it.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import jsonschema._keywords  # type: ignore[import-untyped]
import mcp_types as types
import pytest
from anyio.streams.memory import MemoryObjectSendStream
from mcp import Client
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types.jsonrpc import HEADER_MISMATCH

from tests.support.gates import TOOLS, T, make_world
from tests.support.mcp_orders import orders_server
from tests.test_review47m_mcp_cancel import Blocking, gate_of, outcomes
from tests.test_review58f_mcp import HELLO, WayBack, _settle, offer
from tests.test_review58j_refuted import _answers
from tests.test_review58t_mcp import SERVED_EMPTY, answering
from tests.test_review58v_mcp import LONG_ID
from troth import __version__, limits
from troth.clock import FixedClock
from troth.gates import ListRecorder
from troth.integrations.mcp.channel import new_session, run_session
from troth.integrations.mcp.gate import GATE_NAME, McpGate, gate_server
from troth.integrations.mcp.listing import forget_grown, forget_unlisted

ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "agent", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
"""A 2026-07-28 request's envelope (`params._meta`): no handshake before it."""
LISTINGS = 6
"""The tools/list sent to a gate in front of an upstream naming its tools anew (mcp 2)."""
CALLS = 3
"""The calls an upstream answers HEADER_MISMATCH (mcp 3)."""
PAGES = 20
"""The pages of each of its listings after its first (mcp 3)."""


def modern_call(ident: Any, order: str = "o1") -> dict[str, Any]:
    """A 2026-07-28 tools/call of lookup_order, its id `ident`."""
    params = {"name": "lookup_order", "arguments": {"order_id": order}, "_meta": ENVELOPE}
    return {"jsonrpc": "2.0", "id": ident, "method": "tools/call", "params": params}


@asynccontextmanager
async def session_of(
    upstream: Blocking, recorder: ListRecorder, way_back: WayBack, *, hello: bool = False
) -> AsyncIterator[tuple[MemoryObjectSendStream[Any], list[bool]]]:
    """A session over a secure channel (`run_session`) of the support agent with a gate in
    front of `upstream`, its answers going out through `way_back`: (what the node offers it,
    `offer`; [True] once it ended). `hello`: initialized first (a client of 2025-06-18); else
    none (2026-07-28: each request carries its envelope)."""
    world = make_world()
    support = world.credential(world.support_chain, world.support)
    ended: list[bool] = []
    async with gate_of(world, upstream, recorder) as gate:
        inbound, read = anyio.create_memory_object_stream[Any](limits.MAX_MCP_QUEUE)
        async with anyio.create_task_group() as tg:

            async def serve() -> None:
                await run_session(gate_server(gate, support), read, new_session(), way_back)
                ended.append(True)

            tg.start_soon(serve)
            if hello:
                offer(inbound, {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": HELLO})
                await _settle()
                offer(inbound, {"jsonrpc": "2.0", "method": "notifications/initialized"})
            try:
                yield inbound, ended
            finally:
                tg.cancel_scope.cancel()


async def until(done: Callable[[], bool]) -> None:
    """Wait until `done()` (at most 5 s: TimeoutError)."""
    with anyio.fail_after(5):
        while not done():
            await anyio.sleep(0.01)


def modern_session(upstream: Blocking, *requests: dict[str, Any]) -> tuple[list[Any], Any]:
    """The answers a session over a secure channel (`run_session`) gave `requests` of a
    2026-07-28 client (no initialize), sent in turn; and the trace (a ListRecorder)."""
    recorder, frames = ListRecorder(), []

    async def way_back(frame: bytes) -> bool:
        frames.append(frame)
        return True

    async def main() -> None:
        async with session_of(upstream, recorder, way_back) as (inbound, _):
            for request in requests:
                assert offer(inbound, request)
            await until(lambda: len(_answers(frames)) == len(requests))

    anyio.run(main)
    return _answers(frames), recorder


def test_a_modern_clients_result_filling_the_frame_left_by_its_long_id_is_not_lost() -> None:
    """mcp 1: the result fills what a long id leaves of a frame as the gate counted it (58v,
    mcp 2), but a 2026-07-28 answer carries the gate's serverInfo stamp besides: the frame
    would be over the limit, so the gate refuses the result as it comes and records the call
    unanswered (before: the channel's error, the call recorded served)."""
    ident = f"1{LONG_ID}"
    size = limits.MAX_MCP_FRAME - 73 - len(json.dumps(ident)) - SERVED_EMPTY
    (answer,), recorder = modern_session(answering(size), modern_call(ident))
    assert answer["error"]["message"].startswith("troth: the upstream's answer is over the")
    assert outcomes(recorder) == [("lookup_order", "allowed"), ("lookup_order", "unanswered")]


def test_a_modern_clients_result_filling_its_frame_with_the_stamp_is_served_whole() -> None:
    """The limit narrowed for the stamp is exact: a result filling what the long id and the
    2026-07-28 serverInfo stamp leave of a frame is served whole, recorded allowed only."""
    ident = f"1{LONG_ID}"
    stamp = {"io.modelcontextprotocol/serverInfo": {"name": GATE_NAME, "version": __version__}}
    extra = len(',"_meta":' + json.dumps(stamp, separators=(",", ":")))
    size = limits.MAX_MCP_FRAME - 73 - len(json.dumps(ident)) - SERVED_EMPTY - extra
    (answer,), recorder = modern_session(answering(size), modern_call(ident))
    assert len(answer["result"]["content"][0]["text"]) == size
    assert answer["result"]["_meta"] == stamp
    assert outcomes(recorder) == [("lookup_order", "allowed")]


def renaming_upstream(pages: int, first: list[types.Tool] | None = None) -> Server[Any]:
    """An upstream listing its tools in `pages` pages of one tool each, every tool named anew
    at each listing (its output schema a fresh object); its first listing only `first` when
    given. It answers every call HEADER_MISMATCH."""
    listings = [0]

    async def on_list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        page = int(params.cursor) if params is not None and params.cursor else 0
        if page == 0:
            listings[0] += 1
        if first is not None and listings[0] == 1:
            return types.ListToolsResult(tools=first)
        name = f"t{listings[0]}_{page}"
        schema = {"type": "object", "properties": {"result": {"type": "string"}}}
        tool = types.Tool(name=name, input_schema={"type": "object"}, output_schema=schema)
        after = str(page + 1) if page + 1 < pages else None
        return types.ListToolsResult(tools=[tool], next_cursor=after)

    async def on_call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        raise MCPError(HEADER_MISMATCH, "the headers do not match")

    return Server("orders", on_list_tools=on_list_tools, on_call_tool=on_call_tool)


@pytest.mark.parametrize("pages", [3, limits.MAX_TOOL_PAGES + 1])
def test_an_upstream_naming_its_tools_anew_does_not_grow_the_gates_client(pages: int) -> None:
    """mcp 2: LISTINGS tools/list, each a listing of `pages` pages of new names (past
    MAX_TOOL_PAGES: each refused). The gate's client keeps per-tool state of the last listing
    at most, not of every listing's every page."""
    world = make_world()
    support = world.credential(world.support_chain, world.support)
    kept: list[int] = []

    async def main() -> None:
        async with Client(renaming_upstream(pages), cache=None) as client:
            gate = McpGate(world.point(world.store(world.bundle())), client, clock=FixedClock(T))
            async with Client(gate_server(gate, support), mode="legacy", cache=None) as agent:
                for _ in range(LISTINGS):
                    with contextlib.suppress(MCPError):
                        await agent.list_tools()
            session = client.session
            kept.append(len(session._tool_output_schemas))  # the SDK's per-tool state

    anyio.run(main)
    assert kept[0] <= pages


def test_an_upstreams_header_mismatch_does_not_grow_the_gates_client() -> None:
    """mcp 3: CALLS allowed calls, each answered HEADER_MISMATCH: the gate's client keeps the
    gate's tools only after each (before: PAGES new tools a call, up to 100)."""
    world = make_world()
    support = world.credential(world.support_chain, world.support)
    kept: list[int] = []

    async def main() -> None:
        lookup = types.Tool(name="lookup_order", input_schema=TOOLS["lookup_order"])
        async with Client(renaming_upstream(PAGES, [lookup]), cache=None) as client:
            gate = McpGate(world.point(world.store(world.bundle())), client, clock=FixedClock(T))
            async with Client(gate_server(gate, support), mode="legacy", cache=None) as agent:
                assert [t.name for t in (await agent.list_tools()).tools] == ["lookup_order"]
                for ident in range(CALLS):
                    with contextlib.suppress(MCPError):
                        await agent.call_tool("lookup_order", {"order_id": f"o{ident}"})
            kept.append(len(client.session._tool_output_schemas))

    anyio.run(main)
    assert kept[0] <= 1


def test_forgetting_needs_a_connected_sdk_client() -> None:
    """mcp 2 and 3: a client not connected (its `session` raises RuntimeError: one closing
    while a call fails), or another upstream, has nothing forgotten and raises nothing, so the
    call's own failure is what is answered."""
    for upstream in (Client(orders_server()), object()):
        forget_grown(upstream, ())
        forget_unlisted(upstream, ())


EVIL = "^(a+)+$"
"""A backtracking pattern: matching `a` * n + `!` takes some 2^n steps."""


class PatternSpy:
    """`re` for jsonschema's keywords: notes every pattern searched."""

    def __init__(self) -> None:
        self.searched: list[str] = []

    def search(self, pattern: str, text: str) -> Any:
        self.searched.append(pattern)
        return re.search(pattern, text)


def evil_upstream() -> Server[Any]:
    """An upstream whose lookup_order declares an output schema with EVIL, and answers with
    structured content that backtracks it (short here: the test only looks whether it runs)."""
    output = {"type": "object", "properties": {"r": {"type": "string", "pattern": EVIL}}}
    tool = types.Tool(name="lookup_order", input_schema=TOOLS["lookup_order"], output_schema=output)

    async def on_list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[tool])

    async def on_call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        content: list[types.ContentBlock] = [types.TextContent(type="text", text="order")]
        return types.CallToolResult(content=content, structured_content={"r": "a" * 8 + "!"})

    return Server("orders", on_list_tools=on_list_tools, on_call_tool=on_call_tool)


def test_the_gate_never_runs_an_upstreams_output_schema_pattern(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """mcp 4: the call is allowed and served; the upstream's output-schema pattern is never
    searched in the gate (its result is the upstream's word, served in the gate's envelope)."""
    spy = PatternSpy()
    monkeypatch.setattr(jsonschema._keywords, "re", spy)
    world = make_world()
    support = world.credential(world.support_chain, world.support)
    results: list[types.CallToolResult] = []

    async def main() -> None:
        async with Client(evil_upstream(), cache=None) as client:
            gate = McpGate(world.point(world.store(world.bundle())), client, clock=FixedClock(T))
            server = gate_server(gate, support)
            async with Client(server, mode="legacy", cache=None) as agent:
                await agent.list_tools()
                results.append(await gate.call_tool(support, "lookup_order", {"order_id": "o"}))

    anyio.run(main)
    assert EVIL not in spy.searched
    (result,) = results
    assert (result.is_error, result.structured_content) == (False, {"r": "a" * 8 + "!"})
