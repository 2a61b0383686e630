"""Review 63p, MCP: the gate's tools/list in pages (troth.integrations.mcp.pages).

1. (63k limits 4, fixed here) A gate published over secure channels answered `tools/list` in
   one message, which a channel session carries in one frame (MAX_MCP_RESULT), while it reads
   and serves listings of up to MAX_UPSTREAM_LISTING_BYTES: 24 declared tools whose upstream
   descriptions are 48 KB each (every limit kept) made every channel client's tools/list the
   channel's error, so it saw no tool. The gate now pages its answer (MCP "Pagination": `cursor`
   in, `nextCursor` out), each page within the limit of the request's answer; a cursor is
   opaque, MAC'd under a key of the connection, bound to the caller's listing as it was: one
   forged, garbage, another connection's or stale (the bundle changed between pages) is
   refused with Invalid params (-32602), never a crash, an unfiltered or a mixed listing. The
   first test is a real MCP SDK client following `nextCursor` (the SDK's `Client.list_tools`
   returns one page: its caller follows the cursor); the end-to-end channel test is
   tests/test_review63k_limits.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.server import MCPServer
from mcp.shared.exceptions import MCPError

from tests.support.gates import GatesWorld, T, lookup_order, make_world
from tests.test_review58f_mcp import HELLO, offer
from tests.test_review58j_refuted import _answers
from troth import limits
from troth.clock import FixedClock
from troth.gates import DecisionPoint, schema_from_function
from troth.gates.store import BundleStore
from troth.integrations.mcp.answers import RESULT_LIMIT, McpGateError
from troth.integrations.mcp.channel import new_session, run_session
from troth.integrations.mcp.gate import McpGate, UpstreamChanges, gate_server
from troth.integrations.mcp.pages import CURSOR_TEXT, Pages

_COUNT, _DESCRIPTION = 24, "d" * 48_000  # 1.15 MB of tools, each within MAX_UPSTREAM_TOOL_BYTES
_NAMES = [f"t{n:02d}" for n in range(_COUNT)]
_ALL = '@id("all") permit(principal, action, resource);'
_EVEN = "\n".join(
    f'@id("{name}") permit(principal, action == Action::"invoke:{name}", resource);'
    for name in _NAMES[::2]
)
_ODD_FOR_WRITERS = (
    _EVEN
    + "\n".join(  # the odd ones to writers only (the support agent)
        f'\n@id("{name}") permit(principal, action == Action::"invoke:{name}", resource) when '
        '{ principal.hasTag("orders.access") && '
        'principal.getTag("orders.access").contains("write") };'
        for name in _NAMES[1::2]
    )
)


def _upstream() -> MCPServer:
    app = MCPServer("orders")
    for name in _NAMES:

        def tool(order_id: str) -> str:
            return order_id

        app.add_tool(tool, name=name, description=_DESCRIPTION)
    return app


class _Counted:
    """An upstream client counting its listings."""

    def __init__(self, client: Client) -> None:
        self.client, self.listings = client, 0

    async def list_tools(self, *, cursor: str | None = None) -> types.ListToolsResult:
        self.listings += 1
        return await self.client.list_tools(cursor=cursor, cache_mode="bypass")

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult:
        return await self.client.call_tool(name, arguments)


def _world(policies: str = _ALL) -> tuple[GatesWorld, BundleStore, DecisionPoint]:
    world = make_world()
    store = world.store(world.bundle(tools=_tools(), policies=policies))
    return world, store, world.point(store)


def _tools() -> dict[str, Any]:
    return {name: schema_from_function(lookup_order) for name in _NAMES}


@asynccontextmanager
async def _gate(
    point: DecisionPoint, changes: UpstreamChanges | None = None
) -> AsyncIterator[tuple[McpGate, _Counted]]:
    async with Client(_upstream(), cache=None) as client:
        upstream = _Counted(client)
        yield McpGate(point, upstream, clock=FixedClock(T + 10), changes=changes), upstream


async def _pages(agent: Client) -> list[types.ListToolsResult]:
    """Every page of a listing, as an MCP client follows `nextCursor`."""
    pages = [await agent.list_tools()]
    while pages[-1].next_cursor is not None and len(pages) < 20:
        pages.append(await agent.list_tools(cursor=pages[-1].next_cursor))
    return pages


def _in_session(test: Callable[[], Awaitable[None]]) -> None:
    """Run `test` as a session over a secure channel serves its gate: RESULT_LIMIT set."""

    async def main() -> None:
        token = RESULT_LIMIT.set(limits.MAX_MCP_RESULT)
        try:
            await test()
        finally:
            RESULT_LIMIT.reset(token)

    anyio.run(main)


def _refused(exc: pytest.ExceptionInfo[MCPError]) -> None:
    assert exc.value.error.code == types.INVALID_PARAMS
    assert exc.value.error.message.startswith("troth: the cursor is not one of this listing")


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_an_sdk_client_lists_every_tool_through_pages_each_within_a_frame(mode: str) -> None:
    world, _, point = _world()
    support = world.credential(world.support_chain, world.support)
    pages: list[types.ListToolsResult] = []

    async def test() -> None:
        async with (
            _gate(point) as (gate, _),
            Client(gate_server(gate, support), mode=mode, cache=None) as agent,
        ):
            pages.extend(await _pages(agent))

    _in_session(test)
    assert len(pages) == 2
    assert pages[-1].next_cursor is None
    assert [tool.name for page in pages for tool in page.tools] == _NAMES  # in order, once each
    for page in pages:
        answer = page.model_dump_json(by_alias=True, exclude_none=True)
        assert len(answer.encode()) <= limits.MAX_MCP_RESULT
        assert page.next_cursor is None or len(page.next_cursor) == CURSOR_TEXT


def test_hostile_cursors_are_refused_as_invalid_params_without_a_listing() -> None:
    world, _, point = _world()
    support = world.credential(world.support_chain, world.support)

    async def test() -> None:
        async with (
            _gate(point) as (gate, upstream),
            Client(gate_server(gate, support), cache=None) as agent,
            Client(gate_server(gate, support), cache=None) as other,
        ):
            first = await agent.list_tools()
            cursor = first.next_cursor
            assert cursor is not None
            flipped = cursor[:10] + ("A" if cursor[10] != "A" else "B") + cursor[11:]
            theirs = (await other.list_tools()).next_cursor  # another connection's
            assert theirs is not None
            listed = upstream.listings
            hostile = ["", "x", "0" * CURSOR_TEXT, flipped, cursor + "A", "é" * CURSOR_TEXT]
            hostile += [cursor[:-1] + "=", "!" * CURSOR_TEXT, theirs, "A" * 1_000_000]
            hostile.append(cursor[:-1] + chr(ord(cursor[-1]) + 1))  # its spare bits
            for bad in hostile:
                with pytest.raises(MCPError) as exc:
                    await agent.list_tools(cursor=bad)
                _refused(exc)
            assert upstream.listings == listed  # a forged cursor costs no listing
            second = await agent.list_tools(cursor=cursor)  # the real one still serves
            assert second.next_cursor is None
            assert second.tools

    _in_session(test)


def test_a_cursor_never_shows_a_tool_the_gate_hides_from_its_caller() -> None:
    world, _, point = _world(_ODD_FOR_WRITERS)
    support = world.credential(world.support_chain, world.support)  # read and write: all
    sub = world.credential(world.sub_chain, world.sub)  # read: the even ones
    seen: dict[str, list[str]] = {}

    async def test() -> None:
        async with (
            _gate(point) as (gate, _),
            Client(gate_server(gate, support), cache=None) as writer,
            Client(gate_server(gate, sub), cache=None) as reader,
        ):
            seen["writer"] = [t.name for page in await _pages(writer) for t in page.tools]
            seen["reader"] = [t.name for page in await _pages(reader) for t in page.tools]
            cursor = (await writer.list_tools()).next_cursor  # the writer's, to the reader
            assert cursor is not None
            with pytest.raises(MCPError) as exc:
                await reader.list_tools(cursor=cursor)
            _refused(exc)

    _in_session(test)
    assert seen["writer"] == _NAMES
    assert seen["reader"] == _NAMES[::2]


def test_a_bundle_changed_between_pages_refuses_the_cursor_and_a_new_listing_serves() -> None:
    world, store, point = _world()
    support = world.credential(world.support_chain, world.support)
    after: list[str] = []

    async def test() -> None:
        async with (
            _gate(point) as (gate, _),
            Client(gate_server(gate, support), cache=None) as agent,
        ):
            cursor = (await agent.list_tools()).next_cursor
            assert cursor is not None
            fewer = world.bundle(revision=2, tools=_tools(), policies=_EVEN)
            store.accept(fewer, feeds=world.feeds(), now=T + 6)
            with pytest.raises(MCPError) as exc:  # never a page of another listing
                await agent.list_tools(cursor=cursor)
            _refused(exc)
            after.extend(t.name for page in await _pages(agent) for t in page.tools)

    _in_session(test)
    assert after == _NAMES[::2]


def test_an_announced_change_leaving_the_listing_as_it_was_keeps_the_cursor() -> None:
    world, _, point = _world()
    support = world.credential(world.support_chain, world.support)
    changes = UpstreamChanges()
    names: list[str] = []

    async def test() -> None:
        async with (
            _gate(point, changes) as (gate, upstream),
            Client(gate_server(gate, support), cache=None) as agent,
        ):
            first = await agent.list_tools()
            listed = upstream.listings
            await changes(types.ToolListChangedNotification())  # listed again: the same tools
            assert first.next_cursor is not None
            second = await agent.list_tools(cursor=first.next_cursor)
            assert upstream.listings == listed + 1
            names.extend(t.name for page in (first, second) for t in page.tools)

    _in_session(test)
    assert names == _NAMES


def test_over_stdio_one_page_and_any_cursor_is_refused() -> None:
    world, _, point = _world()
    support = world.credential(world.support_chain, world.support)

    async def main() -> None:
        assert RESULT_LIMIT.get() is None  # stdio: no limit
        async with (
            _gate(point) as (gate, _),
            Client(gate_server(gate, support), cache=None) as agent,
        ):
            listing = await agent.list_tools()
            assert [t.name for t in listing.tools] == _NAMES
            assert listing.next_cursor is None
            with pytest.raises(MCPError) as exc:  # was ignored: the whole listing again
                await agent.list_tools(cursor="0" * CURSOR_TEXT)
            _refused(exc)

    anyio.run(main)


def test_an_answer_no_tool_fits_is_the_gates_error() -> None:
    world, _, point = _world()
    support = world.credential(world.support_chain, world.support)

    async def main() -> None:
        token = RESULT_LIMIT.set(40_000)  # less than one tool (a request's id taking the rest)
        try:
            async with _gate(point) as (gate, _):
                with pytest.raises(McpGateError, match="no tool fits an answer of 40000 bytes"):
                    await gate.list_tools(support)
        finally:
            RESULT_LIMIT.reset(token)

    anyio.run(main)


def test_every_page_is_packed_within_its_limit_as_the_sdk_writes_it() -> None:
    """Each page's answer, as the MCP SDK dumps it (`model_dump(mode="json")`, then compact
    JSON), is within the limit, and holds as many whole tools as fit: one more would not."""
    world, _, point = _world()
    support = world.credential(world.support_chain, world.support)

    async def pages_at(limit: int) -> list[types.ListToolsResult]:
        async with _gate(point) as (gate, _):
            token = RESULT_LIMIT.set(limit)
            try:
                pages = [await gate.list_tools(support, pages=(at := Pages()))]
                while (cursor := pages[-1].next_cursor) is not None:
                    pages.append(await gate.list_tools(support, cursor=cursor, pages=at))
            finally:
                RESULT_LIMIT.reset(token)
            return pages

    for limit in (49_000, 100_000, 250_123, limits.MAX_MCP_RESULT, 1_300_000):
        pages = anyio.run(pages_at, limit)
        assert [t.name for page in pages for t in page.tools] == _NAMES
        for page in pages:
            dumped = page.model_dump(by_alias=True, mode="json", exclude_none=True)
            assert len(json.dumps(dumped, separators=(",", ":")).encode()) <= limit
            if page.next_cursor is not None:  # a full page: the next tool did not fit
                more = page.model_copy(update={"tools": [*page.tools, page.tools[0]]})
                assert len(more.model_dump_json(by_alias=True, exclude_none=True)) > limit - 32
        assert (len(pages) == 1) == (limit > 1_200_000)


@pytest.mark.parametrize("ident", [1, "i" * 20_000])
def test_pages_reach_a_channel_client_whatever_its_request_ids(ident: int | str) -> None:
    """The frames of a session over a secure channel (`run_session`): every page is answered,
    none the channel's error, a long request id narrowing the pages (review 58v, mcp 2)."""
    world, _, point = _world()
    support = world.credential(world.support_chain, world.support)
    frames: list[bytes] = []
    answers: list[dict[str, Any]] = []

    async def way_back(frame: bytes) -> bool:
        frames.append(frame)
        return True

    async def answer_to(asked: object) -> dict[str, Any]:
        with anyio.fail_after(5):
            while True:
                for message in _answers(frames):
                    if message.get("id") == asked:
                        frames.clear()
                        return message
                await anyio.sleep(0.01)

    async def main() -> None:
        async with _gate(point) as (gate, _):
            inbound, read = anyio.create_memory_object_stream[Any](limits.MAX_MCP_QUEUE)
            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    run_session, gate_server(gate, support), read, new_session(), way_back
                )
                assert offer(
                    inbound, {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": HELLO}
                )
                await answer_to(0)
                assert offer(inbound, {"jsonrpc": "2.0", "method": "notifications/initialized"})
                params: dict[str, Any] = {}
                for _ in range(10):
                    ask = {"jsonrpc": "2.0", "id": ident, "method": "tools/list", "params": params}
                    assert offer(inbound, ask)
                    answers.append(await answer_to(ident))
                    cursor = answers[-1].get("result", {}).get("nextCursor")
                    if cursor is None:
                        break
                    params = {"cursor": cursor}
                tg.cancel_scope.cancel()

    anyio.run(main)
    assert all("error" not in answer for answer in answers), answers[-1]
    assert [t["name"] for answer in answers for t in answer["result"]["tools"]] == _NAMES
