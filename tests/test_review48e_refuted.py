"""Review 48e (gates): attacks tried that the code withstood. A member or agent controlling
tool names and arguments: Cedar's JSON escapes (`__entity`, `__extn`, `__expr`) in argument
keys and values, records shaped like entity references, integers past Cedar's i64 and I-JSON,
floats, NaN and infinities, booleans for integers, deep nesting, keys the schema does not
declare; names differing from a hidden tool's only by case or by a confusable character; an
MCP upstream that adds tools after the gate listed it (`tools/list_changed`); a bundle whose
policies name an action its schema does not declare; and calls racing a bundle swap, each
decided and recorded under exactly one revision."""

from __future__ import annotations

import math
import threading
from typing import Any

import anyio
import pytest
from mcp_types import CallToolResult, ListToolsResult, TextContent

from tests.support.gates import POLICIES, TOOLS, T, lookup_order, make_world
from troth.clock import FixedClock
from troth.errors import PolicyError, PolicyFailure
from troth.gates import BundleStore, ListRecorder, Outcome, Tool, ToolCall, ToolGate
from troth.integrations.mcp.gate import McpGate

_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "s": {"type": "string"},
        "n": {"type": "integer"},
        "r": {
            "type": "object",
            "properties": {"type": {"type": "string"}, "id": {"type": "string"}},
        },
        "l": {"type": "array", "items": {"type": "string"}},
    },
}
_POLICIES = """\
@id("p") permit(principal, action == Action::"invoke:t", resource)
  unless { context.args has s && context.args.s == "blocked" };
@id("cap") forbid(principal, action == Action::"invoke:t", resource)
  when { context.args has n && context.args.n > 5 };
"""


def _deep(levels: int) -> dict[str, Any]:
    top: dict[str, Any] = {}
    node = top
    for _ in range(levels):
        node["r"] = {}
        node = node["r"]
    return top


_INJECTED: dict[str, Any] = {
    "entity-for-a-string": {"s": {"__entity": {"type": "Agent", "id": "x"}}},
    "extension-for-a-string": {"s": {"__extn": {"fn": "decimal", "arg": "1.0"}}},
    "expression-for-a-string": {"s": {"__expr": '"x"'}},
    "entity-as-the-arguments": {"__entity": {"type": "Agent", "id": "x"}},
    "entity-for-a-record": {"r": {"__entity": {"type": "Tool", "id": "t"}}},
    "undeclared-key": {"s": "x", "zz": 1},
    "escape-key": {"__extn": 1},
    "empty-key": {"": 1},
    "float-over-the-cap": {"n": 9.0},
    "float-under-the-cap": {"n": 1.0},
    "float-huge": {"n": 1e300},
    "nan": {"n": math.nan},
    "infinity": {"n": -math.inf},
    "boolean-for-an-integer": {"n": True},
    "past-i64": {"n": 2**63},
    "below-i64": {"n": -(2**63) - 1},
    "past-i-json": {"n": 2**53 + 1},
    "ten-to-the-400": {"n": 10**400},
    "string-for-an-integer": {"n": "9"},
    "integer-for-a-string": {"s": 5},
    "mixed-set": {"l": ["a", 1]},
    "nested-past-the-encoder": _deep(100_000),
}


@pytest.mark.parametrize("name", sorted(_INJECTED))
def test_cedar_escapes_and_odd_values_in_arguments_are_denied(name: str) -> None:
    """None of them reaches a policy as anything but a type error: `arguments`, and the tool
    does not run (a record shaped like an entity reference is a plain record: control)."""
    world = make_world()
    ran: list[dict[str, Any]] = []

    def t(**kwargs: Any) -> str:
        ran.append(kwargs)
        return "ran"

    store = world.store(world.bundle(policies=_POLICIES, tools={"t": _SCHEMA}))
    gate = ToolGate(world.point(store), [Tool("t", _SCHEMA, t)], clock=FixedClock(T + 10))
    caller = world.credential(world.support_chain, world.support)
    result = gate.invoke(caller, "t", _INJECTED[name])
    assert (result.allowed, result.decision.outcome, ran) == (False, Outcome.ARGUMENTS, [])
    control = gate.invoke(caller, "t", {"r": {"type": "Agent", "id": "x"}, "n": 5})
    assert (control.allowed, ran) == (True, [{"r": {"type": "Agent", "id": "x"}, "n": 5}])


@pytest.mark.parametrize(
    "name",
    [
        "Export_customers",
        "EXPORT_CUSTOMERS",
        "export_customers ",
        "export\u2010customers",
        "\uff45xport_customers",
        "export_customer\u0455",
        "export_customers\x00",
    ],
)
def test_a_name_like_a_hidden_tools_is_told_as_a_made_up_one(name: str) -> None:
    """export_customers is declared, and hidden from support (no permit could allow it): a
    variant of its name is no such tool either, and reads exactly as a made-up name."""
    world = make_world()
    recorder = ListRecorder()
    point = world.point(world.store(world.bundle()), recorder)
    ran: list[str] = []

    def export_customers(fmt: str = "csv") -> str:
        ran.append(fmt)
        return "all of them"

    tool = Tool("export_customers", TOOLS["export_customers"], export_customers)
    gate = ToolGate(point, [tool], clock=FixedClock(T + 10))
    caller = world.credential(world.support_chain, world.support)
    made_up = gate.invoke(caller, "no_such_tool", {"fmt": "csv"}).decision
    seen = gate.invoke(caller, name, {"fmt": "csv"}).decision
    assert (seen.allowed, seen.reason, ran) == (False, made_up.reason, [])
    assert recorder.records[-1].decision.outcome is Outcome.UNKNOWN_REQUEST


class _Changing:
    """An MCP upstream whose tool list changes after the gate listed it (as one announcing
    `notifications/tools/list_changed` would): `later` tools are added at `change()`."""

    def __init__(self) -> None:
        self.tools = [Tool.from_function(lookup_order).to_json()]
        self.calls: list[str] = []

    def change(self) -> None:
        self.tools += [
            {"name": "export_customers", "inputSchema": TOOLS["export_customers"]},
            {"name": "shell", "inputSchema": {"type": "object", "properties": {}}},
        ]

    async def list_tools(self, *, cursor: str | None = None) -> ListToolsResult:
        return ListToolsResult.model_validate({"tools": self.tools})

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> CallToolResult:
        self.calls.append(name)
        return CallToolResult(content=[TextContent(type="text", text="ran")])


def test_tools_an_upstream_adds_mid_session_are_judged_before_they_run() -> None:
    """A tool added after the gate's listing is called: the gate lists again (its relisting
    interval over) and judges it by the bundle: one it does not declare, and one declared
    but hidden from the caller, are both no such tool, and the upstream never sees them."""
    world = make_world()
    recorder = ListRecorder()
    point = world.point(world.store(world.bundle()), recorder)
    upstream = _Changing()
    clock = FixedClock(T + 10)
    gate = McpGate(point, upstream, clock=clock)
    caller = world.credential(world.support_chain, world.support)

    async def main() -> list[str]:
        listed = await gate.list_tools(caller)
        upstream.change()
        clock.advance(60)
        said = []
        for name in ("shell", "export_customers"):
            result = await gate.call_tool(caller, name, {})
            assert result.is_error
            block = result.content[0]
            assert isinstance(block, TextContent)
            said.append(block.text)
        return [t.name for t in listed.tools] + said

    names_then, *said = anyio.run(main)
    assert upstream.calls == []
    assert said == ["troth: denied: the policy bundle declares no such tool"] * 2
    assert names_then == "lookup_order"
    # judged by the new listing: export_customers by its real decision, its schema the
    # upstream's (a stale listing would have judged it undeclared)
    shell, export = (r.request for r in recorder.records)
    assert isinstance(shell, ToolCall)
    assert isinstance(export, ToolCall)
    assert (shell.tool, shell.schema) == ("shell", '{"properties":{},"type":"object"}')
    assert (export.tool, export.arguments) == ("export_customers", {"fmt": "csv"})
    assert export.schema
    outcomes = [r.decision.outcome for r in recorder.records]
    assert outcomes == [Outcome.UNKNOWN_REQUEST, Outcome.NO_PERMIT]


@pytest.mark.parametrize(
    "policy",
    [
        '@id("ghost") permit(principal, action == Action::"invoke:ghost", resource);',
        '@id("ghost") permit(principal, action in [Action::"invoke:ghost"], resource);',
        '@id("ghost") permit(principal, action == Action::"ghost", resource);',
        '@id("ghost") permit(principal, action, resource == Ghost::"x");',
    ],
)
def test_a_bundle_naming_an_undeclared_action_or_type_is_refused(policy: str) -> None:
    world = make_world()
    with pytest.raises(PolicyError) as refused:
        world.bundle(policies=POLICIES + policy)
    assert refused.value.reason is PolicyFailure.POLICIES_INVALID


def _digest(store: BundleStore) -> str:
    (active,) = store.actives()
    return active.bundle.digest.hex()


def test_calls_racing_a_bundle_swap_are_each_decided_under_one_revision() -> None:
    """Revision 1 permits lookup_order, revision 2 forbids it: calls decided on four threads
    while revision 2 is accepted each carry the revision and digest of the bundle whose
    answer they are (allowed under 1, forbidden by `lookup-off` under 2), in the decision
    and in the record."""
    world = make_world()
    first = world.bundle(revision=1)
    off = '@id("lookup-off") forbid(principal, action == Action::"invoke:lookup_order", resource);'
    second = world.bundle(revision=2, policies=POLICIES + off)
    store = world.store(first)
    recorder = ListRecorder()
    point = world.point(store, recorder)
    caller = world.credential(world.support_chain, world.support)
    digests = {1: _digest(store)}
    start = threading.Barrier(5)
    decided: list[tuple[bool, tuple[str, ...], int | None, str | None]] = []
    lock = threading.Lock()

    def calls() -> None:
        start.wait()
        for _ in range(200):
            d = point.decide(caller, ToolCall("lookup_order", {"order_id": "o"}), now=T + 10)
            with lock:
                decided.append((d.allowed, d.policies, d.revision, d.digest))

    threads = [threading.Thread(target=calls) for _ in range(4)]
    for thread in threads:
        thread.start()
    start.wait()
    store.accept(second, feeds=world.feeds(), now=T + 5)
    for thread in threads:
        thread.join()
    digests[2] = _digest(store)
    expected = {
        1: (True, ("lookup",), 1, digests[1]),
        2: (False, ("lookup-off",), 2, digests[2]),
    }
    assert len(decided) == len(recorder.records) == 800
    for one in decided:
        assert one == expected[one[2] or 0]
    for record in recorder.records:
        d = record.decision
        assert (d.allowed, d.policies, d.revision, d.digest) == expected[d.revision or 0]
    last = point.decide(caller, ToolCall("lookup_order", {"order_id": "o"}), now=T + 10)
    assert (last.allowed, last.revision) == (False, 2)
