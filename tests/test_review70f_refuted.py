"""Review 70f (tool-argument values and MCP charges): attacks that did not work, each a test
that fails if the defence it names breaks."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.gates import T, make_world
from troth import limits
from troth.gates import Outcome, ToolCall, compile_policies
from troth.gates.engine import PolicyEngine

NOW = T + 10
_ALL = '@id("all") permit(principal, action, resource);\n'


def _engine(schema: dict[str, Any], policies: str = _ALL) -> PolicyEngine:
    return PolicyEngine(compile_policies(policies, "", {"t": schema}))


def test_numbers_at_the_edges_are_denied_not_handed_on() -> None:
    """Numbers at the edges: NaN, infinities (a JSON `1e400` reads as one), `-0.0`, and
    integers past Cedar's 64 bits, as an MCP client's JSON can carry them, for an `integer`
    argument: each denied (`arguments`) before or by Cedar, none allowed as another value;
    `-0` is the integer 0. A huge integer's digits never reach the gate: the MCP SDK refuses
    the message (as do the encoder's 4,300 digits)."""
    from troth.errors import DecodeError
    from troth.integrations.mcp.channel import decode_message

    world = make_world()
    member = world.credential(world.support_chain, world.support)
    engine = _engine({"type": "object", "properties": {"x": {"type": "integer"}}})
    for value in (float("nan"), float("inf"), float("-inf"), -0.0, 1e308, 2**64, -(2**64)):
        denied = engine.decide(member, ToolCall("t", {"x": value}), now=NOW)
        assert (denied.allowed, denied.outcome) == (False, Outcome.ARGUMENTS), value
    assert engine.decide(member, ToolCall("t", {"x": -0}), now=NOW).allowed
    huge = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":'
    with pytest.raises(DecodeError):
        decode_message(huge + b'{"x":' + b"9" * 100_000 + b"}}}")


def test_unicode_that_expands_is_bounded_by_its_escaped_text() -> None:
    """Unicode that expands in Cedar's JSON: the arguments are handed to Cedar as ASCII JSON
    (`\\uXXXX`, six characters for a two-byte character, twelve for an astral one), and it is
    that text MAX_TOOL_ARGUMENTS_BYTES bounds: a 0.4 MB UTF-8 string escaping past 1 MiB is
    denied before Cedar, one escaping within it allowed."""
    world = make_world()
    member = world.credential(world.support_chain, world.support)
    engine = _engine({"type": "object", "properties": {"s": {"type": "string"}}})
    within = "\U0001f600" * (limits.MAX_TOOL_ARGUMENTS_BYTES // 12 - 4)
    assert engine.decide(member, ToolCall("t", {"s": within}), now=NOW).allowed
    over = "\u00e9" * (limits.MAX_TOOL_ARGUMENTS_BYTES // 6 + 1)
    assert len(over.encode()) < limits.MAX_TOOL_ARGUMENTS_BYTES // 2
    denied = engine.decide(member, ToolCall("t", {"s": over}), now=NOW)
    assert (denied.allowed, denied.outcome) == (False, Outcome.ARGUMENTS)


def test_the_answer_caches_are_not_poisoned_by_calls_that_differ() -> None:
    """Cache poisoning: an engine keeps error-free answers by Cedar's answer text (69g) and
    each chain's decisions by (allowed, reasons); neither is keyed by the arguments, so two
    calls that differ are two answers, never one's taken for the other's. Interleaved calls
    whose arguments allow, forbid and find no permit, each decided as its own every time."""
    world = make_world()
    member = world.credential(world.support_chain, world.support)
    policies = (
        '@id("a") permit(principal, action == Action::"invoke:t", resource)'
        ' when { context.args.s == "a" || context.args.s == "b" };\n'
        '@id("b") forbid(principal, action == Action::"invoke:t", resource)'
        ' when { context.args.s == "b" };\n'
    )
    schema = {"type": "object", "properties": {"s": {"type": "string"}}, "required": ["s"]}
    engine = _engine(schema, policies)
    expected = {"a": Outcome.ALLOWED, "b": Outcome.FORBIDDEN, "c": Outcome.NO_PERMIT}
    for _ in range(3):
        for value, outcome in expected.items():
            decided = engine.decide(member, ToolCall("t", {"s": value}), now=NOW)
            assert decided.outcome == outcome, value


def test_deep_but_narrow_arguments_are_refused_unparsed_or_denied() -> None:
    """Deep but narrow: arguments nested thousands deep (`[[[...]]]`, few bytes, few values
    each level) are refused by the MCP SDK's decoding (its nesting limit) before any gate,
    and a direct caller's 100,000 levels are denied (`arguments`) by the count that walks
    them iteratively, never followed into Cedar's or the encoder's recursion."""
    from troth.errors import DecodeError
    from troth.integrations.mcp.channel import decode_message

    deep = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":'
    with pytest.raises(DecodeError):
        decode_message(deep + b'{"x":' + b"[" * 5_000 + b"]" * 5_000 + b"}}}")
    world = make_world()
    member = world.credential(world.support_chain, world.support)
    items = {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}
    engine = _engine({"type": "object", "properties": {"x": items}})
    value: list[Any] = []
    for _ in range(100_000):
        value = [value]
    denied = engine.decide(member, ToolCall("t", {"x": value}), now=NOW)
    assert (denied.allowed, denied.outcome) == (False, Outcome.ARGUMENTS)
