"""Review 51f: attacks on the gates that failed (the code was right), kept as tests.

- A hidden tool called through the MCP gate by a variant of its name (case, spaces, a newline,
  a zero-width or full-width character, a Cyrillic homoglyph) is denied as a name the bundle
  does not declare, and the upstream (which would dispatch any variant) never sees the call.
- Arguments Cedar could be fooled by (an extra key, a Cedar entity or extension escape in a
  string field, a float, bool or string for an integer, NaN, 2^53, a lone surrogate, nesting
  10,000 deep) are denied before the tool runs, and every such decision is recorded.
- A delegation back to a subject already in the chain (which would give Cedar two entities of
  one uid, the principal's broader one first) is refused when the chain is verified.
- A recorder that fails stops the call: the MCP client is told nothing of the failure's text
  (a path), and the upstream never sees the call.
- An upstream schema whose integer default is written `1.0` has the bundle's shape (RFC 8785
  writes both `1`): the call is judged, recorded and forwarded with the integer 1.
- A presented chain mutated at random (bytes of a caveated delegate's chain) is decided and
  recorded every time: no error escapes the decision point unrecorded.
"""

from __future__ import annotations

import random
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client

from tests.support.gates import POLICIES, TOOLS, T, lookup_order, make_world, refund
from tests.support.mcp_orders import orders_server
from tests.support.parties import hand_link
from troth.clock import FixedClock
from troth.credentials import Attributes, CredentialChain, delegate
from troth.errors import CredentialError, StorageError
from troth.gates import (
    DecisionRecord,
    ListRecorder,
    Outcome,
    PresentedChain,
    Tool,
    ToolCall,
    ToolGate,
)
from troth.integrations.mcp.gate import DENIED_PREFIX, McpGate, gate_server

UNDECLARED = DENIED_PREFIX + "denied: the policy bundle declares no such tool"


class _AnyName:
    """An upstream listing the orders tools that would run a call of any name (a variant of a
    tool's name included), counting the calls it gets."""

    def __init__(self, upstream: Client) -> None:
        self.upstream = upstream
        self.calls: list[tuple[str, dict[str, Any] | None]] = []

    async def list_tools(self, *, cursor: str | None = None) -> types.ListToolsResult:
        return await self.upstream.list_tools(cursor=cursor)

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult:
        self.calls.append((name, arguments))
        return types.CallToolResult(content=[types.TextContent(type="text", text="ran")])


VARIANTS = [
    "Export_customers",
    "EXPORT_CUSTOMERS",
    "export_customers ",
    " export_customers",
    "export_customers\n",
    "export_customers\u200b",
    "export_customers\x00",
    "\uff45xport_customers",  # full-width e
    "\u0435xport_customers",  # Cyrillic e
    "export-customers",
    "export_customers.",
]


def test_a_hidden_tools_name_variants_never_reach_the_upstream() -> None:
    world = make_world()
    recorder = ListRecorder()
    point = world.point(world.store(world.bundle()), recorder)
    caller = world.credential(world.support_chain, world.support)
    answers: list[str] = []
    seen: list[tuple[str, dict[str, Any] | None]] = []

    async def main() -> None:
        async with Client(orders_server(), cache=None) as client:
            upstream = _AnyName(client)
            gate = McpGate(point, upstream, clock=FixedClock(T + 10))
            async with Client(gate_server(gate, caller), cache=None) as agent:
                listed = [tool.name for tool in (await agent.list_tools()).tools]
                assert "export_customers" not in listed
                for name in ["export_customers", *VARIANTS]:
                    result = await agent.call_tool(name, {"fmt": "csv"})
                    assert result.is_error
                    block = result.content[0]
                    assert isinstance(block, types.TextContent)
                    answers.append(block.text)
            seen.extend(upstream.calls)

    anyio.run(main)
    assert answers == [UNDECLARED] * (1 + len(VARIANTS))
    assert seen == []
    tools = [r.request.tool for r in recorder.records if isinstance(r.request, ToolCall)]
    assert tools == ["export_customers", *VARIANTS]  # every one decided and recorded
    assert all(not r.decision.allowed for r in recorder.records)


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


SMUGGLED: list[Any] = [
    {"order_id": "o1", "amount": 20, "note": "extra"},
    {"order_id": {"__entity": {"type": "Agent", "id": "x"}}, "amount": 20},
    {"order_id": {"__extn": {"fn": "decimal", "arg": "1.0"}}, "amount": 20},
    {"order_id": "o1", "amount": 20.0},
    {"order_id": "o1", "amount": True},
    {"order_id": "o1", "amount": "20"},
    {"order_id": "o1", "amount": float("nan")},
    {"order_id": "o1", "amount": float("inf")},
    {"order_id": "o1", "amount": 2**53},
    {"order_id": "o1", "amount": -(2**63) - 1},
    {"order_id": "o\ud800", "amount": 20},
    {"order_id": _nested(10_000), "amount": 20},
    {"order_id": ["o1"], "amount": 20},
    {"order_id": None, "amount": 20},
]


@pytest.mark.parametrize("arguments", SMUGGLED, ids=range(len(SMUGGLED)))
def test_smuggled_arguments_are_denied_and_recorded(arguments: Any) -> None:
    world = make_world()
    recorder = ListRecorder()
    point = world.point(world.store(world.bundle()), recorder)
    caller = world.credential(world.support_chain, world.support)
    ran: list[dict[str, Any]] = []

    def run(order_id: str, amount: int) -> str:
        ran.append({"order_id": order_id, "amount": amount})
        return "refunded"

    gate = ToolGate(point, [Tool("refund", TOOLS["refund"], run)], clock=FixedClock(T + 10))
    result = gate.invoke(caller, "refund", arguments)
    assert not result.allowed
    assert result.decision.outcome is Outcome.ARGUMENTS
    assert ran == []
    assert [r.decision.outcome for r in recorder.records] == [Outcome.ARGUMENTS]


def test_a_delegation_back_into_the_chain_is_refused() -> None:
    """Refused when made (review 54q, delegation 4: `delegate` refuses a subject already in the
    chain), and a link made by hand, with no check, when the gate verifies it."""
    world = make_world(sub_caveats=("context.args.amount <= 10",))
    chain = CredentialChain.decode(world.sub_chain)
    read = Attributes({"orders.access": "read"})
    with pytest.raises(CredentialError, match="delegation cycle"):
        delegate(
            world.sub.signer,
            chain,
            subject=world.support.identifier,
            attributes=read,
            now=T,
            ttl=86_400,
            purpose="back to the support agent",
        )
    back = hand_link(world.sub, chain, world.support.identifier, read, now=T, expires_at=T + 600)
    with pytest.raises(CredentialError, match="delegation cycle"):
        world.credential(back.encode(), world.support)


class _Failing:
    def record(self, record: DecisionRecord) -> None:
        raise StorageError("database is locked: /home/alice/.troth/nodes/private/trace.db")


def test_a_failing_recorder_tells_the_client_nothing_and_runs_nothing() -> None:
    world = make_world()
    point = world.point(world.store(world.bundle()), _Failing())
    caller = world.credential(world.support_chain, world.support)
    errors: list[str] = []
    seen: list[tuple[str, dict[str, Any] | None]] = []

    async def main() -> None:
        async with Client(orders_server(), cache=None) as client:
            upstream = _AnyName(client)
            gate = McpGate(point, upstream, clock=FixedClock(T + 10))
            async with Client(gate_server(gate, caller), cache=None) as agent:
                try:
                    await agent.call_tool("refund", {"order_id": "o1", "amount": 20})
                except Exception as exc:  # the SDK's MCPError: the server's internal error
                    errors.append(str(exc))
            seen.extend(upstream.calls)

    anyio.run(main)
    assert len(errors) == 1
    assert "alice" not in errors[0]
    assert "trace.db" not in errors[0]
    assert seen == []


PAGE = {"type": "object", "properties": {"n": {"type": "integer", "default": 1}}}
PAGE_POLICY = '@id("page") permit(principal, action == Action::"invoke:page", resource);\n'


class _FloatDefault:
    """An upstream whose `page` tool writes its integer default as 1.0."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any] | None] = []

    async def list_tools(self, *, cursor: str | None = None) -> types.ListToolsResult:
        schema = {"type": "object", "properties": {"n": {"type": "integer", "default": 1.0}}}
        return types.ListToolsResult(tools=[types.Tool(name="page", input_schema=schema)])

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult:
        self.calls.append(arguments)
        return types.CallToolResult(content=[types.TextContent(type="text", text="page")])


def test_a_float_default_upstream_is_judged_and_forwarded_as_the_integer() -> None:
    world = make_world()
    bundle = world.bundle(policies=POLICIES + PAGE_POLICY, tools={**TOOLS, "page": PAGE})
    recorder = ListRecorder()
    point = world.point(world.store(bundle), recorder)
    caller = world.credential(world.support_chain, world.support)
    upstream = _FloatDefault()
    gate = McpGate(point, upstream, clock=FixedClock(T + 10))

    async def main() -> None:
        listed = await gate.list_tools(caller)
        assert [tool.name for tool in listed.tools] == ["page"]
        result = await gate.call_tool(caller, "page", {})
        assert not result.is_error

    anyio.run(main)
    assert upstream.calls == [{"n": 1}]
    assert [type(a["n"]) for a in upstream.calls if a is not None] == [int]
    (record,) = recorder.records
    assert record.decision.allowed
    assert isinstance(record.request, ToolCall)
    assert record.request.arguments == {"n": 1}


def test_the_tool_gate_runs_the_plain_values_judged() -> None:
    """The support fixture's tools, declared from functions, run only what Cedar saw."""
    world = make_world()
    point = world.point(world.store(world.bundle()))
    caller = world.credential(world.support_chain, world.support)
    gate = ToolGate(
        point, [Tool.from_function(f) for f in (lookup_order, refund)], clock=FixedClock(T + 10)
    )
    assert gate.invoke(caller, "refund", {"order_id": "o1", "amount": 20}).allowed
    denied = gate.invoke(caller, "refund", {"order_id": "o1", "amount": 5000})
    assert denied.decision.outcome is Outcome.FORBIDDEN


def test_a_mutated_chain_is_decided_and_recorded_every_time() -> None:
    world = make_world(sub_caveats=("context.args.amount <= 10",))
    recorder = ListRecorder()
    point = world.point(world.store(world.bundle()), recorder)
    rnd = random.Random(51)
    decided = 0
    for _ in range(300):
        data = bytearray(world.sub_chain)
        for _ in range(rnd.randint(1, 4)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        try:
            caller = PresentedChain(
                bytes(data), world.sub.identifier, world.verifier, world.held_feed
            )
        except CredentialError:  # not even a chain's shape: no caller to decide for
            continue
        point.decide(caller, ToolCall("lookup_order", {"order_id": "o1"}), now=T + 10)
        decided += 1
    assert decided > 100
    assert len(recorder.records) == decided
