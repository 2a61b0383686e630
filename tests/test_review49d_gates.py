"""Review 49d, gates 1: arguments are filled with their schema's defaults before they are judged
(docs/policy.md, "Tool arguments"), and only then held to MAX_TOOL_ARGUMENTS_BYTES. A tool whose
array items are records with a defaulted property let a small call grow without bound: each
`{}` of the array (3 bytes on the wire) was filled with the default, then the whole was
encoded for Cedar and only then refused as over the limit. With a 4,000-character default,
30 KB of arguments made 86 MB before the denial; a 1 MiB MCP frame of them, gigabytes, in the
node serving a member's session. The filling now stops once the defaults it adds are past the
limit (the call would be refused for its size anyway) and the call is denied `arguments`."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from mcp_types import CallToolResult, ListToolsResult, TextContent

from tests.support.gates import T, export_customers, make_world
from troth import limits
from troth.clock import FixedClock
from troth.credentials import Attributes, issue_credential
from troth.errors import PolicyError
from troth.gates import ListRecorder, Outcome, Tool, ToolGate, compile_tool_schema
from troth.integrations.mcp.gate import McpGate

DEFAULT = "x" * 4000
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "notes": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"text": {"type": "string", "default": DEFAULT}},
            },
        }
    },
}
POLICIES = '@id("notes") permit(principal, action == Action::"invoke:annotate", resource);\n'
ITEMS = 10_000  # 30 KB of arguments, 40 MB once filled
PEAK = 16_000_000
"""Bytes a denied call may allocate at its peak (filled, it took 86 MB)."""


def _peak(run: Callable[[], Any]) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = run()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _annotate(notes: list[dict[str, str]] | None = None) -> int:
    return len(notes or [])


def test_defaults_filled_past_the_limit_are_denied_before_they_are_built() -> None:
    world = make_world()
    recorder = ListRecorder()
    store = world.store(world.bundle(policies=POLICIES, tools={"annotate": SCHEMA}))
    point = world.point(store, recorder)
    gate = ToolGate(point, [Tool("annotate", SCHEMA, _annotate)], clock=FixedClock(T + 10))
    caller = world.credential(world.support_chain, world.support)
    small = gate.invoke(caller, "annotate", {"notes": [{}, {"text": "a"}]})
    assert small.allowed
    assert small.value == 2
    assert recorder.records[-1].request.arguments == {  # type: ignore[union-attr]
        "notes": [{"text": DEFAULT}, {"text": "a"}]
    }
    result, peak = _peak(lambda: gate.invoke(caller, "annotate", {"notes": [{}] * ITEMS}))
    assert result.decision.outcome is Outcome.ARGUMENTS
    assert recorder.records[-1].decision.outcome is Outcome.ARGUMENTS
    assert peak < PEAK, f"{peak} bytes allocated to deny the call"


class _Upstream:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any] | None] = []

    async def list_tools(self, *, cursor: str | None = None) -> ListToolsResult:
        tool = {"name": "annotate", "inputSchema": SCHEMA}
        return ListToolsResult.model_validate({"tools": [tool]})

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> CallToolResult:
        self.calls.append(arguments)
        return CallToolResult(content=[TextContent(type="text", text="ok")])


def test_an_mcp_call_filled_past_the_limit_is_denied_before_it_is_built() -> None:
    world = make_world()
    point = world.point(world.store(world.bundle(policies=POLICIES, tools={"annotate": SCHEMA})))
    upstream = _Upstream()
    gate = McpGate(point, upstream, clock=FixedClock(T + 10))
    caller = world.credential(world.support_chain, world.support)

    async def call(arguments: dict[str, Any]) -> CallToolResult:
        return await gate.call_tool(caller, "annotate", arguments)

    assert not anyio.run(call, {"notes": [{}]}).is_error
    assert upstream.calls == [{"notes": [{"text": DEFAULT}]}]
    result, peak = _peak(lambda: anyio.run(call, {"notes": [{}] * ITEMS}))
    assert result.is_error
    assert "arguments do not match" in result.content[0].text
    assert upstream.calls == [{"notes": [{"text": DEFAULT}]}]
    assert peak < PEAK, f"{peak} bytes allocated to deny the call"


def test_a_fill_past_the_limit_is_a_typed_refusal() -> None:
    """`ToolSchema.fill` refuses (PolicyError) the arguments its defaults would take past
    MAX_TOOL_ARGUMENTS_BYTES, counted across the whole call (every record of every array)."""
    fill = compile_tool_schema("annotate", SCHEMA).fill
    assert fill is not None
    per_item = len(DEFAULT) + len('"text":""')
    fits = limits.MAX_TOOL_ARGUMENTS_BYTES // per_item
    assert len(fill({"notes": [{}] * fits})["notes"]) == fits
    with pytest.raises(PolicyError):
        fill({"notes": [{}] * (fits + 1)})


# -- review 49d, gates 2: a positional-only parameter never receives its argument -------------

REFUND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "amount": {"type": "integer", "default": 5000},
    },
    "required": ["order_id"],
}
REFUND_POLICIES = (
    '@id("refund") permit(principal, action == Action::"invoke:refund", resource)\n'
    "  when { context.args has amount && context.args.amount <= 1000 };\n"
)


def _refund(amount: int = 5000, /, *, order_id: str, **rest: Any) -> int:
    """Refunds `amount` (positional-only: `run(**arguments)` puts an `amount` into `rest`)."""
    return amount


def test_a_tool_whose_parameter_cannot_take_its_argument_is_refused() -> None:
    """The tool gate runs `run(**arguments)`: a positional-only `amount` keeps its own default
    (5000) while the `amount` judged (10, within the permit's 1000) lands in `**rest`, so the
    tool refunded what no policy allowed. Such a tool is refused when it is declared, as one
    whose defaults differ from its schema's is (what is judged must be what runs)."""
    world = make_world()
    bundle = world.bundle(policies=REFUND_POLICIES, tools={"refund": REFUND_SCHEMA})
    point = world.point(world.store(bundle))
    caller = world.credential(world.support_chain, world.support)
    with pytest.raises(ValueError, match="positional-only"):
        Tool("refund", REFUND_SCHEMA, _refund)

    def keyword(*, order_id: str, amount: int = 5000, **rest: Any) -> int:
        return amount

    gate = ToolGate(point, [Tool("refund", REFUND_SCHEMA, keyword)], clock=FixedClock(T + 10))
    result = gate.invoke(caller, "refund", {"order_id": "o1", "amount": 10})
    assert result.allowed
    assert result.value == 10  # what ran is what was judged
    assert not gate.invoke(caller, "refund", {"order_id": "o1"}).allowed  # 5000 judged


# -- review 49d, gates 3: a tool run elsewhere is told the arguments judged --------------------


def test_a_tool_run_elsewhere_is_given_the_arguments_judged() -> None:
    """A `Tool` declared without a function is decided by the gate and run by something else:
    an allowed call omitting `fmt` was judged with the schema's default ("csv"), but the
    `ToolResult` said nothing of it, so the runner ran with its own default (perhaps "json",
    which a policy forbids). The allowed result carries the arguments as judged."""
    world = make_world()
    point = world.point(world.store(world.bundle()))
    tool = Tool.from_function(export_customers)
    elsewhere = Tool(tool.name, tool.input_schema)
    gate = ToolGate(point, [elsewhere], clock=FixedClock(T + 10))
    dpo = Attributes({"troth.role": "dpo"})
    party, _ = world.new_member()
    issued = issue_credential(
        world.authority.signer,
        subject=party.identifier,
        attributes=dpo,
        now=T,
        ttl=86_400,
        depth=1,
    )
    caller = world.member_credential(party, issued)
    result = gate.invoke(caller, "export_customers", {})
    assert result.allowed
    assert result.value is None
    assert result.arguments == {"fmt": "csv"}
    denied = gate.invoke(caller, "export_customers", {"fmt": "xml"})
    assert not denied.allowed
    assert denied.arguments is None
