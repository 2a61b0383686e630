"""Review 51f, gates 1: an array argument is a Cedar `Set`, which keeps one of each value, so
a call whose array repeats an item was judged on fewer items than the tool acts on. A policy
holding a refund to the items allowed (`["sku1"].containsAll(context.args.items)`) allowed
`items: ["sku1", "sku1", "sku1"]`, which refunds sku1 three times: Cedar cannot count a set's
members, so no policy could bound it. Like a NUL in a string (review 47g, gates 1), the tool
would act on more than Cedar judged: a call whose arrays (at any depth, records in arrays
included, compared as JSON values) repeat an item is now denied (`arguments`) before Cedar.
"""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
import pytest

from tests.support.gates import POLICIES, TOOLS, T, make_world
from troth.clock import FixedClock
from troth.gates import ListRecorder, Outcome, Tool, ToolCall, ToolGate
from troth.integrations.mcp.gate import McpGate

ITEMS = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "items": {"type": "array", "items": {"type": "string"}},
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "sku": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "integer"}},
                },
                "required": ["sku"],
            },
        },
    },
    "required": ["order_id"],
}
ITEMS_POLICY = """\
@id("refund-items") permit(principal, action == Action::"invoke:refund_items", resource)
  when { if context.args has items then ["sku1", "sku2"].containsAll(context.args.items)
         else true };
"""

REPEATED: list[dict[str, Any]] = [
    {"order_id": "o1", "items": ["sku1", "sku1", "sku1"]},
    {"order_id": "o1", "items": ["sku1", "sku2", "sku1"]},
    {"order_id": "o1", "lines": [{"sku": "a"}, {"sku": "a"}]},
    {"order_id": "o1", "lines": [{"sku": "a", "tags": [1, 2]}, {"tags": [1, 2], "sku": "a"}]},
    {"order_id": "o1", "lines": [{"sku": "a", "tags": [1, 1]}]},
    # Cedar's records of equal sets are equal: the tool's two lines are one to Cedar
    {"order_id": "o1", "lines": [{"sku": "a", "tags": [1, 2]}, {"sku": "a", "tags": [2, 1]}]},
]
DISTINCT: list[dict[str, Any]] = [
    {"order_id": "o1", "items": ["sku1", "sku2"]},
    {"order_id": "o1", "items": []},
    {"order_id": "o1", "lines": [{"sku": "a", "tags": [1, 2]}, {"sku": "a", "tags": [1, 3]}]},
    {"order_id": "o1", "lines": [{"sku": "a"}, {"sku": "a", "tags": []}]},
    {"order_id": "o1", "lines": [{"sku": "a"}, {"sku": "b"}]},
]


def _gate() -> tuple[ToolGate, Any, list[dict[str, Any]]]:
    world = make_world()
    bundle = world.bundle(policies=POLICIES + ITEMS_POLICY, tools={**TOOLS, "refund_items": ITEMS})
    point = world.point(world.store(bundle))
    caller = world.credential(world.support_chain, world.support)
    ran: list[dict[str, Any]] = []

    def run(**arguments: Any) -> str:
        ran.append(arguments)
        return "refunded"

    return (
        ToolGate(point, [Tool("refund_items", ITEMS, run)], clock=FixedClock(T + 10)),
        caller,
        ran,
    )


@pytest.mark.parametrize("arguments", REPEATED, ids=range(len(REPEATED)))
def test_an_array_repeating_an_item_is_denied(arguments: dict[str, Any]) -> None:
    gate, caller, ran = _gate()
    result = gate.invoke(caller, "refund_items", arguments)
    assert result.decision.outcome is Outcome.ARGUMENTS
    assert ran == []


@pytest.mark.parametrize("arguments", DISTINCT, ids=range(len(DISTINCT)))
def test_distinct_items_are_judged_as_before(arguments: dict[str, Any]) -> None:
    gate, caller, ran = _gate()
    result = gate.invoke(caller, "refund_items", arguments)
    assert result.allowed, result.decision.reason
    assert ran == [arguments]


class _Upstream:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any] | None] = []

    async def list_tools(self, *, cursor: str | None = None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool(name="refund_items", input_schema=ITEMS)])

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult:
        self.calls.append(arguments)
        return types.CallToolResult(content=[types.TextContent(type="text", text="refunded")])


def test_the_mcp_gate_never_forwards_repeated_items() -> None:
    world = make_world()
    bundle = world.bundle(policies=POLICIES + ITEMS_POLICY, tools={**TOOLS, "refund_items": ITEMS})
    recorder = ListRecorder()
    point = world.point(world.store(bundle), recorder)
    caller = world.credential(world.support_chain, world.support)
    upstream = _Upstream()
    gate = McpGate(point, upstream, clock=FixedClock(T + 10))

    async def main() -> None:
        allowed = await gate.call_tool(
            caller, "refund_items", {"order_id": "o1", "items": ["sku1"]}
        )
        assert not allowed.is_error
        denied = await gate.call_tool(
            caller, "refund_items", {"order_id": "o1", "items": ["sku1", "sku1"]}
        )
        assert denied.is_error

    anyio.run(main)
    assert upstream.calls == [{"order_id": "o1", "items": ["sku1"]}]
    outcomes = [r.decision.outcome for r in recorder.records if isinstance(r.request, ToolCall)]
    assert outcomes == [Outcome.ALLOWED, Outcome.ARGUMENTS]


def test_a_direct_callers_tuple_repeating_an_item_is_denied() -> None:
    """A tuple is what JSON writes as an array too (a caller of the decision point's own)."""
    world = make_world()
    bundle = world.bundle(policies=POLICIES + ITEMS_POLICY, tools={**TOOLS, "refund_items": ITEMS})
    point = world.point(world.store(bundle))
    caller = world.credential(world.support_chain, world.support)
    repeated = ToolCall("refund_items", {"order_id": "o1", "items": ("sku1", "sku1")})
    assert point.decide(caller, repeated, now=T + 10).outcome is Outcome.ARGUMENTS
    once = ToolCall("refund_items", {"order_id": "o1", "items": ("sku1",)})
    assert point.decide(caller, once, now=T + 10).allowed
