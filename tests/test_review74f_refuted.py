"""Review 74f (the gates' decision on one tool call, attacked as a malicious agent holding a
caveated delegation or as a malicious MCP caller): attacks that did not work, each kept as a
test that fails if the defence it names breaks.

- A tool decided in a server: its entities are the chain's with that one tool added per call;
  a forbid on the action group (`action in Action::"invoke"`) and one on the server still hold
  (the schema's action hierarchy is kept in the handle the tool is added to).
- A surrogate pair handed to the tool gate as two code points: Cedar reads the one character
  the encoded pair names, and the tool runs with that character, never with what Cedar did not
  judge.
- A tools/call whose JSON repeats an argument's key: the MCP message is read once (the last
  value), and that one reading is judged, recorded and forwarded; a float or an exponent for
  an integer argument is denied and never forwarded.
- A tool listed as `refund` called by a name differing in case, a trailing space or an
  invisible character: judged as a tool the gate does not know, never forwarded.
- Caveats on two links, the bundle's policies numbered first: an erring caveat is named by its
  own `caveat:<link>:<n>` in the decision (what the trace signs), and a false one by its id.
- A caveat on the time: the per-chain decision cache (by Allow and the deciding policies) never
  serves an allow once the caveat is false.
"""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
import pytest

from tests.support.gates import POLICIES, TOOLS, GatesWorld, T, make_world
from tests.support.parties import make_party
from troth.clock import FixedClock
from troth.credentials import Attributes, CredentialChain, VerifiedCredential, delegate
from troth.gates import (
    ListRecorder,
    Outcome,
    PolicyEngine,
    Tool,
    ToolCall,
    ToolGate,
    compile_policies,
)
from troth.integrations.mcp.gate import McpGate

NOW = T + 10
LOOKUP = ToolCall("lookup_order", {"order_id": "o1"})


@pytest.fixture(scope="module")
def world() -> GatesWorld:
    return make_world()


def test_group_and_server_forbids_hold_for_a_tool_decided_in_a_server(world: GatesWorld) -> None:
    """A forbid on `action in Action::"invoke"` (no delegate invokes a tool) and one on
    `resource in Server::"pay"` hold whatever server the tool is decided in: the per-call
    entities (the chain's with the tool added) keep the action hierarchy."""
    sub = world.credential(world.sub_chain, world.sub)
    deep = POLICIES + (
        '@id("no-deep") forbid(principal, action in Action::"invoke", resource)\n'
        "  when { principal.depth > 0 };\n"
    )
    paid = POLICIES + (
        '@id("no-pay") forbid(principal, action, resource) when { resource in Server::"pay" };\n'
    )
    group = PolicyEngine(compile_policies(deep, "", TOOLS))
    server = PolicyEngine(compile_policies(paid, "", TOOLS))
    for name in (None, "pay", "other"):
        call = ToolCall("lookup_order", {"order_id": "o1"}, server=name)
        assert group.decide(sub, call, now=NOW).policies == ("no-deep",)
        decided = server.decide(sub, call, now=NOW)
        assert decided.allowed is (name != "pay"), name


def test_a_surrogate_pair_as_two_code_points_runs_as_the_character_judged(
    world: GatesWorld,
) -> None:
    """`"\\ud83d\\ude00"` (two code points in Python) is encoded as JSON's escaped pair, which
    Cedar reads as one character: a forbid of that character denies it, and an allowed call
    runs the tool with the character, what Cedar judged."""
    policies = POLICIES + (
        '@id("no-smile") forbid(principal, action == Action::"invoke:lookup_order", resource)\n'
        '  when { context.args.order_id == "\U0001f600" };\n'
    )
    point = world.point(world.store(world.bundle(policies=policies)))
    ran: list[str] = []

    def lookup_order(order_id: str) -> str:
        ran.append(order_id)
        return "ok"

    gate = ToolGate(point, [Tool.from_function(lookup_order)], clock=FixedClock(NOW))
    support = world.credential(world.support_chain, world.support)
    denied = gate.invoke(support, "lookup_order", {"order_id": "\ud83d\ude00"})
    assert (denied.allowed, denied.decision.policies) == (False, ("no-smile",))
    assert gate.invoke(support, "lookup_order", {"order_id": "a\ud83d\ude00"}).allowed
    assert ran == ["a\U0001f600"]


class _Upstream:
    """An upstream serving the gates world's tools, keeping the arguments of each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any] | None]] = []

    async def list_tools(self, *, cursor: str | None = None) -> types.ListToolsResult:
        tools = [{"name": name, "inputSchema": schema} for name, schema in TOOLS.items()]
        return types.ListToolsResult.model_validate({"tools": tools})

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult:
        self.calls.append((name, arguments))
        return types.CallToolResult(content=[types.TextContent(type="text", text="ok")])


def _mcp(world: GatesWorld) -> tuple[McpGate, _Upstream, ListRecorder]:
    recorder = ListRecorder()
    upstream = _Upstream()
    point = world.point(world.store(world.bundle()), recorder)
    return McpGate(point, upstream, clock=FixedClock(NOW)), upstream, recorder


def _params(raw: str) -> types.CallToolRequestParams:
    """The params of a tools/call as the gate's transports read its JSON text."""
    message = types.jsonrpc_message_adapter.validate_json(
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":' + raw + "}", by_name=False
    )
    assert isinstance(message, types.JSONRPCRequest)
    assert message.params is not None
    return types.CallToolRequestParams.model_validate(message.params)


def _calls(
    world: GatesWorld, raws: list[str]
) -> tuple[list[types.CallToolResult], _Upstream, ListRecorder]:
    gate, upstream, recorder = _mcp(world)
    support = world.credential(world.support_chain, world.support)

    async def main() -> list[types.CallToolResult]:
        results = []
        for raw in raws:
            params = _params(raw)
            results.append(await gate.call_tool(support, params.name, params.arguments))
        await gate.close()
        return results

    return anyio.run(main), upstream, recorder


def test_a_repeated_argument_key_is_read_once_judged_and_forwarded_as_read(
    world: GatesWorld,
) -> None:
    """`{"amount": 5, "amount": 5000}` is the call of 5000 (denied by refund-cap, never
    forwarded); `{"amount": 5000, "amount": 5}` the call of 5, forwarded and recorded as 5."""
    head = '{"name":"refund","arguments":{"order_id":"o1",'
    results, upstream, recorder = _calls(
        world, [head + '"amount":5,"amount":5000}}', head + '"amount":5000,"amount":5}}']
    )
    assert [r.is_error for r in results] == [True, False]
    assert upstream.calls == [("refund", {"order_id": "o1", "amount": 5})]
    assert [dict(r.request.arguments) for r in recorder.records] == [  # type: ignore[union-attr]
        {"order_id": "o1", "amount": 5000},
        {"order_id": "o1", "amount": 5},
    ]
    assert recorder.records[0].decision.policies == ("refund-cap",)


REFUND = '{"name":"%s","arguments":{"order_id":"o1","amount":%s}}'
NEVER_FORWARDED = [
    *((REFUND % ("refund", amount), Outcome.ARGUMENTS) for amount in ("5.0", "1e2", "-0.0", "5E0")),
    *(
        (REFUND % (name, "5"), Outcome.UNKNOWN_REQUEST)
        for name in ("Refund", "refund ", "refund\u200b", " refund", "REFUND")
    ),
]


@pytest.mark.parametrize(("raw", "outcome"), NEVER_FORWARDED)
def test_a_float_for_an_integer_or_another_spelling_is_never_forwarded(
    world: GatesWorld, raw: str, outcome: Outcome
) -> None:
    """A float or an exponent for an integer argument is denied `arguments`; a listed tool
    called by a name differing in case, a space or an invisible character is one the gate
    does not know: neither reaches the upstream."""
    (result,), upstream, recorder = _calls(world, [raw])
    assert result.is_error
    assert upstream.calls == []
    assert recorder.records[0].decision.outcome is outcome


def _caveated(world: GatesWorld, *links: tuple[str, ...]) -> VerifiedCredential:
    """A chain from the support agent through a fresh party per link, the delegation to the
    k-th carrying `links[k]` as its caveats (link k + 1)."""
    chain = CredentialChain.decode(world.support_chain)
    signer, party = world.support.signer, world.support
    for caveats in links:
        party = make_party(world.vault, now=T)
        read = Attributes({"orders.access": "read"})
        chain = delegate(
            signer,
            chain,
            subject=party.identifier,
            attributes=read,
            now=T,
            ttl=86_400,
            purpose="lookups",
            caveats=caveats,
        )
        signer = party.signer
    return world.credential(chain.encode(), party)


def test_an_erring_or_false_caveat_is_named_by_its_own_id(world: GatesWorld) -> None:
    """Two caveats on link 1, one on link 2, under the four policies of the bundle (so
    cedarpy renumbers the added ones): the erring one (link 2) is named `caveat:2:0`, a false
    one `caveat:1:1`, never another policy or caveat."""
    engine = PolicyEngine(compile_policies(POLICIES, "", TOOLS))
    erring = _caveated(world, ("true", 'context.args.order_id != "x"'), ("context.nope",))
    decided = engine.decide(erring, LOOKUP, now=NOW)
    assert (decided.allowed, decided.outcome) == (False, Outcome.EVALUATION_ERROR)
    assert decided.errors == ("policy caveat:2:0 could not be evaluated",)
    false = _caveated(world, ("true", 'context.args.order_id != "o1"'), ("true",))
    decided = engine.decide(false, LOOKUP, now=NOW)
    assert (decided.allowed, decided.policies) == (False, ("caveat:1:1",))


def test_a_cached_allow_is_never_served_once_a_time_caveat_is_false(world: GatesWorld) -> None:
    engine = PolicyEngine(compile_policies(POLICIES, "", TOOLS))
    timed = _caveated(world, (f"context.now < {T + 100}",))
    for _ in range(3):
        assert engine.decide(timed, LOOKUP, now=NOW).allowed
    late = engine.decide(timed, LOOKUP, now=T + 100)
    assert (late.allowed, late.policies) == (False, ("caveat:1:0",))
    assert engine.decide(timed, LOOKUP, now=NOW).allowed


RESERVED = ("in", "if", "has", "like", "principal", "context", "true", "a-b")


def test_argument_names_that_are_cedar_words_are_judged_by_their_values(
    world: GatesWorld,
) -> None:
    """Properties named as Cedar's keywords and variables (`in`, `has`, `principal`, `true`,
    ...) or with a `-`: each is its own field of `context.args`, judged by its value."""
    schema = {
        "type": "object",
        "properties": {name: {"type": "integer"} for name in RESERVED},
        "required": list(RESERVED),
    }
    policies = POLICIES + '@id("w") permit(principal, action == Action::"invoke:w", resource);\n'
    for k, name in enumerate(RESERVED):
        policies += (
            f'@id("cap{k}") forbid(principal, action == Action::"invoke:w", resource)\n'
            f'  when {{ context.args["{name}"] > 10 }};\n'
        )
    engine = PolicyEngine(compile_policies(policies, "", {**TOOLS, "w": schema}))
    support = world.credential(world.support_chain, world.support)
    low = dict.fromkeys(RESERVED, 5)
    assert engine.decide(support, ToolCall("w", low), now=NOW).allowed
    for k, name in enumerate(RESERVED):
        decided = engine.decide(support, ToolCall("w", {**low, name: 11}), now=NOW)
        assert decided.policies == (f"cap{k}",), name


@pytest.mark.parametrize("value", [b"o1", bytearray(b"o1"), memoryview(b"o1")])
def test_bytes_for_a_string_argument_are_denied_never_run(world: GatesWorld, value: Any) -> None:
    """Bytes are no JSON value: the tool gate denies the call (`arguments`), the tool never
    runs with what Cedar did not judge."""
    ran: list[Any] = []

    def lookup_order(order_id: str) -> str:
        ran.append(order_id)
        return "ok"

    point = world.point(world.store(world.bundle()))
    gate = ToolGate(point, [Tool.from_function(lookup_order)], clock=FixedClock(NOW))
    support = world.credential(world.support_chain, world.support)
    result = gate.invoke(support, "lookup_order", {"order_id": value})
    assert (result.allowed, result.decision.outcome, ran) == (False, Outcome.ARGUMENTS, [])
