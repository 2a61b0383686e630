"""Review 51f, mcp: the MCP gate in front of a malicious or failing upstream.

mcp 1: a tools/call whose listing of the upstream failed (the upstream's tools/list answered
an error: it broke, or chose to) was neither decided nor recorded: the upstream's error went
back to the agent as the call's answer and the trace held nothing of the call, though the gate
refused it. It is now decided as a call of a name the gate does not know (nothing is known of
the upstream's tools): denied, and recorded.

mcp 2: the names a gate logs once (an upstream listing a name twice, or with a schema it
cannot read; a tool whose schema differs from the bundle's, per revision) were kept for good:
an upstream listing new names at every listing grew the gate's memory without bound. They are
now bounded (MAX_MCP_NOTED_NAMES): past it the memory starts over.

mcp 3: the upstream's own error text (its refusal of a listen stream; its failure after a
published server started) was logged raw: a newline in it forged a log line, an escape
sequence reached the terminal showing the log. It is now logged escaped and cut
(MAX_MCP_LOGGED_TEXT).
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from tests.support.gates import T, make_world
from tests.support.mcp_orders import orders_server
from troth import limits
from troth.clock import FixedClock
from troth.gates import ListRecorder, Outcome, ToolCall
from troth.integrations.mcp.gate import DENIED_PREFIX, McpGate, UpstreamChanges

UNDECLARED = DENIED_PREFIX + "denied: the policy bundle declares no such tool"


class _Failing:
    """An upstream whose tools/list fails once `fail` is set (its calls are counted)."""

    def __init__(self, upstream: Client) -> None:
        self.upstream = upstream
        self.fail = False
        self.calls: list[str] = []

    async def list_tools(self, *, cursor: str | None = None) -> types.ListToolsResult:
        if self.fail:
            raise MCPError(-32603, "the upstream broke")
        return await self.upstream.list_tools(cursor=cursor)

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult:
        self.calls.append(name)
        return await self.upstream.call_tool(name, arguments)


def _text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def _failed_listing(stale: bool) -> tuple[list[str], list[tuple[str, Outcome]], list[str]]:
    """Calls after the upstream's listing failed: of a name the last listing does not know
    (`stale` False), or of a listed tool once the upstream announced a change (True)."""
    world = make_world()
    recorder = ListRecorder()
    point = world.point(world.store(world.bundle()), recorder)
    caller = world.credential(world.support_chain, world.support)
    answers: list[str] = []
    calls: list[str] = []

    async def main() -> None:
        async with Client(orders_server(), cache=None) as client:
            upstream = _Failing(client)
            clock = FixedClock(T + 10)
            gate = McpGate(point, upstream, clock=clock)
            first = await gate.call_tool(caller, "lookup_order", {"order_id": "o1"})
            answers.append(_text(first))
            upstream.fail = True
            clock.advance(limits.MCP_RELIST_SECONDS + 1)
            name = "lookup_order" if stale else "lookup_orders"
            if stale:
                await gate.changes(types.ToolListChangedNotification())
            result = await gate.call_tool(caller, name, {"order_id": "o1"})
            answers.append(_text(result))
            calls.extend(upstream.calls)

    anyio.run(main)
    records = [
        (r.request.tool, r.decision.outcome)
        for r in recorder.records
        if isinstance(r.request, ToolCall)
    ]
    return answers, records, calls


def test_a_call_whose_listing_failed_is_denied_and_recorded() -> None:
    answers, records, calls = _failed_listing(stale=False)
    assert answers[1] == UNDECLARED
    assert records == [
        ("lookup_order", Outcome.ALLOWED),
        ("lookup_orders", Outcome.UNKNOWN_REQUEST),
    ]
    assert calls == ["lookup_order"]


def test_a_stale_listing_that_fails_again_denies_and_records_the_call() -> None:
    answers, records, calls = _failed_listing(stale=True)
    assert answers[1] == UNDECLARED  # never judged by the listing the upstream said is stale
    assert records == [
        ("lookup_order", Outcome.ALLOWED),
        ("lookup_order", Outcome.UNKNOWN_REQUEST),
    ]
    assert calls == ["lookup_order"]


class _NewNames:
    """An upstream listing `per` new names twice at every listing (and one refund)."""

    def __init__(self, per: int) -> None:
        self.per = per
        self.listings = 0

    async def list_tools(self, *, cursor: str | None = None) -> types.ListToolsResult:
        self.listings += 1
        schema = {"type": "object", "properties": {}}
        tools = [
            types.Tool(name=f"t{self.listings}_{k}", input_schema=schema) for k in range(self.per)
        ]
        unreadable = [
            types.Tool(
                name=f"u{self.listings}_{k}",
                input_schema={"type": "object", "properties": {"x": {"d": float("nan")}}},
            )
            for k in range(self.per)
        ]
        return types.ListToolsResult(tools=tools + tools + unreadable)

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult:
        raise AssertionError("never called")


def test_the_names_a_gate_logs_once_are_bounded() -> None:
    world = make_world()
    point = world.point(world.store(world.bundle()))
    caller = world.credential(world.support_chain, world.support)
    upstream = _NewNames(limits.MAX_MCP_NOTED_NAMES // 4 + 1)
    gate = McpGate(point, upstream, clock=FixedClock(T + 10))

    async def main() -> None:
        for _ in range(8):
            await gate.list_tools(caller)

    anyio.run(main)
    assert upstream.listings == 8
    assert 0 < len(gate._twice) <= limits.MAX_MCP_NOTED_NAMES
    assert 0 < len(gate._unreadable) <= limits.MAX_MCP_NOTED_NAMES


class _RefusingListen:
    """A client whose upstream refuses a listen stream with a message of its own choosing."""

    def listen(self, **_kinds: bool) -> Any:
        raise MCPError(
            -32603, "refused\nWARNING troth.node.policy: forged line\x1b[2J" + "x" * 5000
        )


def test_the_upstreams_refusal_of_a_listen_stream_is_logged_as_one_bounded_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Review 51f, mcp 3: the upstream chose the text logged when it refused the listen stream
    (a newline forged a log line, an escape sequence reached the terminal showing the log);
    the gate logs its error's type and the text escaped and cut, as it logs a tool's name
    only when no newline or length can come of it."""
    changes = UpstreamChanges()
    with caplog.at_level(logging.WARNING, logger="troth.mcp"):
        anyio.run(changes.watch, _RefusingListen())
    (message,) = [r.getMessage() for r in caplog.records if r.name == "troth.mcp"]
    assert "\n" not in message
    assert "\x1b" not in message
    assert "forged line" in message  # escaped, not dropped
    assert len(message) < 1000
