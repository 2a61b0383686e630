"""Review 74f, gates: findings on the gates' decision of one tool call.

gates 1: the tool gate ran an allowed tool with the very argument values its decision record
holds (`ToolGate.invoke`: `run(**plain)` hands the tool the nested lists and objects of the
record's `request.arguments`), and handed a tool declared without a function the record's own
arguments (`ToolResult.arguments`). A tool that changes an argument in place (appends to a
list, fills in an object: sloppy or malicious) changed the record of what was decided, for
every recorder that reads the record after the call ran: a `ListRecorder`'s records, a
recorder queueing the record to sign later. The record then said Cedar judged values it never
saw. Now the tool, and the runner of a tool without a function, get their own copy of the
plain values judged (decoded again from the same JSON), so nothing the tool does reaches the
record.
"""

from __future__ import annotations

import copy
from typing import Any

import anyio
import mcp_types as types
import pytest

from tests.support.gates import POLICIES, TOOLS, T, make_world
from troth.clock import FixedClock
from troth.gates import ListRecorder, Outcome, Tool, ToolGate
from troth.integrations.mcp.gate import McpGate, McpGateError

NOW = T + 10
TAGS = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "meta": {"type": "object", "properties": {"note": {"type": "string"}}},
    },
    "required": ["order_id"],
}
POLICY = POLICIES + (
    '@id("tag") permit(principal, action == Action::"invoke:tag", resource);\n'
    '@id("no-vip") forbid(principal, action == Action::"invoke:tag", resource)\n'
    '  when { context.args has tags && context.args.tags.contains("vip") };\n'
)
JUDGED = {"order_id": "o1", "tags": ["late"], "meta": {"note": "n"}}


def _gate(run: Any) -> tuple[ToolGate, ListRecorder, Any]:
    world = make_world()
    recorder = ListRecorder()
    store = world.store(world.bundle(policies=POLICY, tools={**TOOLS, "tag": TAGS}))
    tool = Tool("tag", TAGS, run)
    gate = ToolGate(world.point(store, recorder), [tool], clock=FixedClock(NOW))
    return gate, recorder, world.credential(world.support_chain, world.support)


def test_a_tool_changing_its_arguments_in_place_leaves_the_record_as_judged() -> None:
    """74f gates 1: the tool appends "vip" (which `no-vip` forbids) to its list argument and
    rewrites its object argument: the decision's record still holds what Cedar judged."""

    def tag(order_id: str, tags: list[str], meta: dict[str, Any]) -> str:
        tags.append("vip")
        meta["note"] = "rewritten"
        return "ok"

    gate, recorder, caller = _gate(tag)
    assert gate.invoke(caller, "tag", JUDGED).allowed
    (record,) = recorder.records
    assert record.decision.allowed
    assert record.request.arguments == JUDGED  # type: ignore[union-attr]


def test_the_runner_of_a_tool_without_a_function_gets_its_own_arguments() -> None:
    """74f gates 1: the arguments an allowed call of a tool declared without a function is to
    be run with are the runner's own: changing them leaves the record as judged."""
    gate, recorder, caller = _gate(None)
    result = gate.invoke(caller, "tag", JUDGED)
    assert result.allowed
    arguments = result.arguments
    assert isinstance(arguments, dict)
    assert arguments == JUDGED
    arguments["tags"].append("vip")
    arguments["order_id"] = "o2"
    assert recorder.records[0].request.arguments == JUDGED  # type: ignore[union-attr]


class _Rewriting:
    """An upstream (any object the MCP gate is given) that changes the arguments it is handed
    in place, then fails the call: the gate records it unanswered after its allowed record."""

    async def list_tools(self, *, cursor: str | None = None) -> types.ListToolsResult:
        return types.ListToolsResult.model_validate(
            {"tools": [{"name": "tag", "inputSchema": TAGS}]}
        )

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult:
        assert arguments is not None
        arguments["tags"].append("vip")
        arguments["order_id"] = "o2"
        raise RuntimeError("failed after all")


def test_an_upstream_changing_its_arguments_leaves_the_records_as_judged() -> None:
    """74f gates 1, the MCP gate: an upstream that changes the arguments it is handed, then
    fails, leaves both records of the call (allowed, then unanswered) with what was judged."""
    world = make_world()
    recorder = ListRecorder()
    store = world.store(world.bundle(policies=POLICY, tools={**TOOLS, "tag": TAGS}))
    gate = McpGate(world.point(store, recorder), _Rewriting(), clock=FixedClock(NOW))
    caller = world.credential(world.support_chain, world.support)

    async def main() -> None:
        with pytest.raises(McpGateError):
            await gate.call_tool(caller, "tag", copy.deepcopy(JUDGED))
        await gate.close()

    anyio.run(main)
    outcomes = [r.decision.outcome for r in recorder.records]
    assert outcomes == [Outcome.ALLOWED, Outcome.UNANSWERED]
    assert [r.request.arguments for r in recorder.records] == [JUDGED, JUDGED]  # type: ignore[union-attr]
