"""Review 47g, gates 1: a string argument holding NUL (U+0000) meant one string to Cedar and a
shorter one to every tool that hands it on as a C string (open(2) and exec, most database and
shell layers): `like "*.txt"` judged `secret.key\\u0000.txt` while such a tool opened
`secret.key`. Such an argument is now denied (`arguments`) before Cedar, at every gate: the MCP
gate (a real MCP client and upstream) and the tool gate."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client

from tests.support.gates import POLICIES, T, make_world
from tests.support.mcp_orders import orders_server, text
from tests.test_review45m_refuted import Spy
from troth.clock import FixedClock
from troth.gates import ListRecorder, Outcome, Tool, ToolCall, ToolGate
from troth.integrations.mcp.gate import DENIED_PREFIX, McpGate, gate_server

TXT_ONLY = (
    POLICIES
    + """
@id("txt-only") forbid(principal, action == Action::"invoke:lookup_order", resource)
  unless { context.args.order_id like "*.txt" };
"""
)
ARGUMENTS = DENIED_PREFIX + "denied: the arguments do not match the tool's input schema"


def _over_mcp(order_id: str) -> tuple[str, list[tuple[str, dict[str, Any] | None]], Outcome]:
    world = make_world()
    recorder = ListRecorder()
    point = world.point(world.store(world.bundle(policies=TXT_ONLY)), recorder)
    caller = world.credential(world.support_chain, world.support)

    async def main() -> tuple[str, list[tuple[str, dict[str, Any] | None]]]:
        async with Client(orders_server(), cache=None) as upstream:
            spy = Spy(upstream)
            gate = McpGate(point, spy, clock=FixedClock(T + 10))
            async with Client(gate_server(gate, caller), mode="legacy", cache=None) as agent:
                result = await agent.call_tool("lookup_order", {"order_id": order_id})
                return text(result), spy.calls

    said, calls = anyio.run(main)
    (record,) = recorder.records
    return said, calls, record.decision.outcome


@pytest.mark.parametrize(
    "order_id", ["secret.key\x00.txt", "\x00.txt", "a.txt\x00", "o\x00\x00.txt"]
)
def test_a_nul_in_a_string_argument_is_denied_over_mcp(order_id: str) -> None:
    said, calls, outcome = _over_mcp(order_id)
    assert (said, calls, outcome) == (ARGUMENTS, [], Outcome.ARGUMENTS)


def test_the_policy_still_judges_strings_without_nul() -> None:
    """The control: the same policy allows a .txt and forbids the rest; text that spells an
    escape (a backslash, then `u0000`) is no NUL."""
    said, calls, outcome = _over_mcp("notes.txt")
    assert (outcome, calls) == (Outcome.ALLOWED, [("lookup_order", {"order_id": "notes.txt"})])
    assert said == "order notes.txt: 2 items, paid"
    assert _over_mcp("secret.key")[2] is Outcome.FORBIDDEN
    assert _over_mcp("a\\u0000.txt")[2] is Outcome.ALLOWED
    assert _over_mcp("a\\\\u0000.txt")[2] is Outcome.ALLOWED


def test_a_nul_anywhere_in_the_arguments_is_denied_by_the_tool_gate() -> None:
    """Nested: in a list and in a record; the tool gate runs nothing."""
    ran: list[object] = []

    def tag(names: list[str]) -> str:
        ran.append(names)
        return "ok"

    world = make_world()
    tools = {
        "tag": {
            "type": "object",
            "properties": {"names": {"type": "array", "items": {"type": "string"}}},
            "required": ["names"],
        }
    }
    policies = '@id("tag") permit(principal, action == Action::"invoke:tag", resource);'
    point = world.point(world.store(world.bundle(policies=policies, tools=tools)))
    gate = ToolGate(point, [Tool("tag", tools["tag"], tag)], clock=FixedClock(T + 10))
    caller = world.credential(world.support_chain, world.support)
    assert gate.invoke(caller, "tag", {"names": ["a", "b"]}).allowed
    denied = gate.invoke(caller, "tag", {"names": ["a", "b\x00c"]})
    assert denied.decision.outcome is Outcome.ARGUMENTS
    assert ran == [["a", "b"]]
    engine_args = {"names": ["x\x00"]}
    decision = point.decide(caller, ToolCall("tag", engine_args), now=T + 10)
    assert decision.outcome is Outcome.ARGUMENTS
