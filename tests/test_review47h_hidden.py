"""Review 47h, gates 1: a tool hidden from a caller (gate 1 does not list it) called by name
must answer exactly what a name the bundle does not declare answers, whatever the arguments,
through the tool gate and the MCP gate alike; the recorded decision keeps the real outcome and
policies (the operator's view), and a tool visible to the caller keeps its real reason."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server import MCPServer

from tests.support.gates import GatesWorld, T, export_customers, lookup_order, make_world, refund
from tests.support.mcp_orders import names, orders_server, text
from tests.test_attacks_review22b_gates import _nested_sets
from troth.clock import FixedClock
from troth.gates import ListRecorder, Outcome, Tool, ToolGate, ToolResult
from troth.integrations.mcp.gate import DENIED_PREFIX, McpGate, gate_server

MADE_UP = "not_a_tool"
UNKNOWN = "denied: the policy bundle declares no such tool"

# (caller, hidden tool, arguments, the outcome recorded): valid, invalid and ill-typed
# arguments of a tool gate 1 hides from the caller
HIDDEN_CALLS: list[tuple[str, str, Any, Outcome]] = [
    ("sub", "refund", {"order_id": "o1", "amount": 1}, Outcome.NO_PERMIT),
    ("sub", "refund", {"order_id": "o1", "amount": 5000}, Outcome.FORBIDDEN),
    ("sub", "refund", {"order_id": "o1"}, Outcome.ARGUMENTS),
    ("sub", "refund", {"order_id": "o1", "amount": 1, "extra": 2}, Outcome.ARGUMENTS),
    ("sub", "refund", {"order_id": "o1", "amount": "1"}, Outcome.ARGUMENTS),
    ("sub", "refund", {"order_id": 7, "amount": 1.5}, Outcome.ARGUMENTS),
    ("support", "export_customers", {"fmt": "csv"}, Outcome.NO_PERMIT),
    ("support", "export_customers", {}, Outcome.NO_PERMIT),
    ("support", "export_customers", {"fmt": "xml"}, Outcome.ARGUMENTS),
    ("support", "export_customers", {"fmt": 1}, Outcome.ARGUMENTS),
    ("support", "export_customers", {"fmt": None}, Outcome.ARGUMENTS),
]
# arguments that are not a JSON object at all (the tool gate's Python callers can pass them)
NOT_OBJECTS: list[Any] = [["ab"], [1], [], "fmt", 3, None]


def _caller(world: GatesWorld, who: str) -> Any:
    if who == "sub":
        return world.credential(world.sub_chain, world.sub)
    return world.credential(world.support_chain, world.support)


def _gate(world: GatesWorld, recorder: ListRecorder, *tools: Tool) -> ToolGate:
    declared = tools or tuple(
        Tool.from_function(f) for f in (lookup_order, refund, export_customers)
    )
    point = world.point(world.store(world.bundle()), recorder)
    return ToolGate(point, declared, clock=FixedClock(T + 10))


def _seen(result: ToolResult) -> str:
    """Everything the agent is handed, as text."""
    return repr(result) + json.dumps(result.decision.to_json(), sort_keys=True)


# -- the tool gate ------------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "tool", "arguments", "recorded"), HIDDEN_CALLS)
def test_tool_gate_answers_a_hidden_tool_as_an_unknown_one(
    who: str, tool: str, arguments: Any, recorded: Outcome
) -> None:
    world = make_world()
    recorder = ListRecorder()
    gate = _gate(world, recorder)
    caller = _caller(world, who)
    assert tool not in [t.name for t in gate.available_tools(caller)]
    hidden = gate.invoke(caller, tool, arguments)
    made_up = gate.invoke(caller, MADE_UP, arguments)
    assert made_up.decision.reason == UNKNOWN
    assert _seen(hidden) == _seen(made_up)
    assert hidden == made_up


@pytest.mark.parametrize("arguments", NOT_OBJECTS)
@pytest.mark.parametrize(("who", "tool"), [("sub", "refund"), ("support", "export_customers")])
def test_tool_gate_answers_a_hidden_tool_with_no_object_as_an_unknown_one(
    who: str, tool: str, arguments: Any
) -> None:
    world = make_world()
    gate = _gate(world, ListRecorder())
    caller = _caller(world, who)
    made_up = gate.invoke(caller, MADE_UP, arguments)
    assert _seen(gate.invoke(caller, tool, arguments)) == _seen(made_up)


@pytest.mark.parametrize("arguments", NOT_OBJECTS)
def test_tool_gate_denies_arguments_not_an_object_of_a_tool_with_defaults(arguments: Any) -> None:
    world = make_world()
    dpo = world.bundle(
        policies='@id("all") permit(principal, action == Action::"invoke:export_customers", '
        "resource);"
    )
    point = world.point(world.store(dpo), ListRecorder())
    gate = ToolGate(point, [Tool.from_function(export_customers)], clock=FixedClock(T + 10))
    support = _caller(world, "support")
    assert [t.name for t in gate.available_tools(support)] == ["export_customers"]
    decision = gate.invoke(support, "export_customers", arguments).decision
    assert (decision.allowed, decision.outcome) == (False, Outcome.ARGUMENTS)


def test_tool_gate_answers_a_tool_hidden_by_its_schema_as_an_unknown_one() -> None:
    def refund(order_id: str, amount: int, reason: str) -> str:  # one argument more
        return "refunded"

    world = make_world()
    tools = (Tool.from_function(refund), Tool.from_function(lookup_order))
    gate = _gate(world, ListRecorder(), *tools)
    support = _caller(world, "support")
    assert [t.name for t in gate.available_tools(support)] == ["lookup_order"]
    for arguments in ({"order_id": "o", "amount": 1, "reason": "x"}, {"order_id": 1}):
        made_up = gate.invoke(support, MADE_UP, arguments)
        assert _seen(gate.invoke(support, "refund", arguments)) == _seen(made_up)


@pytest.mark.parametrize(("who", "tool", "arguments", "recorded"), HIDDEN_CALLS)
def test_tool_gate_records_a_hidden_tools_real_decision(
    who: str, tool: str, arguments: Any, recorded: Outcome
) -> None:
    world = make_world()
    recorder = ListRecorder()
    gate = _gate(world, recorder)
    gate.invoke(_caller(world, who), tool, arguments)
    [record] = recorder.records
    assert record.request.tool == tool  # type: ignore[union-attr]
    assert record.decision.outcome is recorded
    if recorded is Outcome.FORBIDDEN:
        assert record.decision.policies == ("refund-cap",)
        assert record.decision.reason == "denied by policy refund-cap"


def test_tool_gate_keeps_the_real_reason_of_a_visible_tool() -> None:
    world = make_world()
    gate = _gate(world, ListRecorder())
    support = _caller(world, "support")
    capped = gate.invoke(support, "refund", {"order_id": "o", "amount": 5000}).decision
    assert (capped.outcome, capped.reason) == (Outcome.FORBIDDEN, "denied by policy refund-cap")
    wrong = gate.invoke(support, "refund", {"order_id": "o", "amount": "5"}).decision
    assert wrong.outcome is Outcome.ARGUMENTS
    assert gate.invoke(support, "refund", {"order_id": "o", "amount": 5}).allowed


# -- the MCP gate, over a real MCP client -------------------------------------------------------


@asynccontextmanager
async def _gated(
    world: GatesWorld, caller: Any, recorder: ListRecorder, upstream: MCPServer | None = None
) -> AsyncIterator[Client]:
    point = world.point(world.store(world.bundle()), recorder)
    async with Client(upstream or orders_server(), cache=None) as client:
        gate = McpGate(point, client, clock=FixedClock(T + 10))
        async with Client(gate_server(gate, caller), mode="legacy", cache=None) as agent:
            yield agent


def test_mcp_gate_answers_a_hidden_tool_as_an_unknown_one() -> None:
    async def main() -> list[str]:
        world = make_world()
        failures: list[str] = []
        recorder = ListRecorder()
        for who in ("sub", "support"):
            async with _gated(world, _caller(world, who), recorder) as agent:
                visible = await names(agent)
                for caller, tool, arguments, _ in HIDDEN_CALLS:
                    if caller != who:
                        continue
                    assert tool not in visible
                    hidden = await agent.call_tool(tool, arguments)
                    made_up = await agent.call_tool(MADE_UP, arguments)
                    assert made_up.is_error
                    assert text(made_up) == DENIED_PREFIX + UNKNOWN
                    seen = hidden.model_dump(mode="json", by_alias=True)
                    if seen != made_up.model_dump(mode="json", by_alias=True):
                        failures.append(f"{tool} {arguments}: {text(hidden)}")
        outcomes = [r.decision.outcome for r in recorder.records if r.request.tool != MADE_UP]  # type: ignore[union-attr]
        assert outcomes == [recorded for _, _, _, recorded in HIDDEN_CALLS]
        return failures

    assert anyio.run(main) == []


def test_mcp_gate_answers_a_tool_hidden_by_its_schema_as_an_unknown_one() -> None:
    upstream = MCPServer("orders")

    @upstream.tool()
    def refund(order_id: str, amount: int, reason: str) -> str:  # one argument more
        return "refunded"

    async def main() -> None:
        world = make_world()
        recorder = ListRecorder()
        async with _gated(world, _caller(world, "support"), recorder, upstream) as agent:
            assert await names(agent) == []
            for arguments in ({"order_id": "o", "amount": 1, "reason": "x"}, {"order_id": 1}):
                hidden = await agent.call_tool("refund", arguments)
                made_up = await agent.call_tool(MADE_UP, arguments)
                assert hidden.model_dump(mode="json", by_alias=True) == made_up.model_dump(
                    mode="json", by_alias=True
                )
        assert recorder.records[0].decision.outcome is Outcome.SCHEMA_MISMATCH

    anyio.run(main)


def test_mcp_gate_keeps_the_real_reason_of_a_visible_tool() -> None:
    async def main() -> None:
        world = make_world()
        async with _gated(world, _caller(world, "support"), ListRecorder()) as agent:
            capped = await agent.call_tool("refund", {"order_id": "o", "amount": 5000})
            assert text(capped) == DENIED_PREFIX + "denied by policy refund-cap"
            wrong = await agent.call_tool("refund", {"order_id": "o", "amount": "5"})
            assert text(wrong) == (
                DENIED_PREFIX + "denied: the arguments do not match the tool's input schema"
            )

    anyio.run(main)


def test_a_refused_credential_reads_as_it_is_for_any_tool() -> None:
    """Review 47n, gates 3: a denial that does not depend on the tool (the caller's caveat is
    not a Cedar condition) reads as it is for every name, a tool the caller would be shown
    included (docs/policy.md, "The tool gate"); `told` rewrote it to "declares no such tool"
    since the refused credential sees no tools, while the record said CAVEAT_INVALID (a strict
    xfail until `told` passed such denials on)."""
    world = make_world(sub_caveats=(_nested_sets(),))
    recorder = ListRecorder()
    gate = _gate(world, recorder)
    sub = _caller(world, "sub")
    for tool in ("lookup_order", "refund", MADE_UP):
        decision = gate.invoke(sub, tool, {"order_id": "o1"}).decision
        assert (decision.allowed, decision.outcome) == (False, Outcome.CAVEAT_INVALID), tool
