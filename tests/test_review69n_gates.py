"""Review 69n (fresh review of per-call policy evaluation: the Cedar path), findings with their
fixes.

Gates 1. The previews an engine caches (gate 1: the tools a chain is shown, per chain and MCP
server) were bounded by count only (CACHE_ENTRIES, 4,096). Each is a set of up to MAX_TOOLS
names, its own for every chain even where all see the same tools: ~34 KB a chain at MAX_TOOLS
(measured with tracemalloc), so a member's delegates, free to mint, each listing the tools once
(512 at once under the member's preview budget, 2 a second after it under one permit per tool),
held ~140 MB beside the ~64 MiB the chains' entities are bounded to (review 53p, memory 1). The
cache is now bounded by the names it holds too (MAX_CACHED_VISIBLE_NAMES, each preview weighing
its tool count): past it the oldest are dropped and previewed again when next asked (charged to
their member's budget again), a cost, never a wrong answer. The measure is the names held
(deterministic), read from the engine's cache as review 53p reads its entities.

Gates 2. A tool call's cost grew with the number of values in its arguments, not their bytes,
and only the bytes were bounded (MAX_TOOL_ARGUMENTS_BYTES, 1 MiB; an MCP frame through a node
holds as much). Cedar parses the context value by value against the schema (~3-7 us each, with
the GIL held), and troth's own checks walk each value again: a call of ~1 MiB of small nested
arrays (`[[[[[[1]]]]]], [[[[[2]]]]], ...`, ~400,000 values) took ~3.6 s of CPU and stopped
every other thread of the process for ~5 s (measured; an array of short strings ~1.2 s). A
member's MCP budget lets it send 16 such calls at once and one a second after: the node's
gate frozen for as long as it liked, as a caveat's `like` froze it before review 55f. A call
holding more than MAX_TOOL_ARGUMENT_VALUES values (16,384: each item of an object or array,
at any depth; ~0.1 s at worst) is now denied (`arguments`) before any of it is judged, counted
iteratively and given up past the limit. Known and left (the MCP budget's, not the gates'):
a member's rate is bounded in bytes (MCP_BYTES_PER_SECOND), and a call dense in values costs
~3-7 us a byte to decide whatever its size, so ~32 calls a second of 16,384 small values each
(~32 KB) still keep ~3-4 CPU-seconds a second busy; charging a tools/call by its values too
would bound it.
"""

from __future__ import annotations

import pytest

from tests.support.gates import T, make_world
from troth import limits
from troth.gates import Outcome, ToolCall, compile_policies
from troth.gates.engine import PolicyEngine

NOW = T + 10
TOOLS = 64
CHAINS = 8
BOUND_CHAINS = 3  # the budget set below holds this many chains' previews


def test_gates_1_many_chains_previews_keep_at_most_the_name_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = make_world()
    names = [f"t{i:03d}" for i in range(TOOLS)]
    compiled = compile_policies(
        '@id("all") permit(principal, action, resource);\n',
        "",
        {name: {"type": "object"} for name in names},
    )
    budget = BOUND_CHAINS * TOOLS
    monkeypatch.setattr(limits, "MAX_CACHED_VISIBLE_NAMES", budget, raising=False)
    engine = PolicyEngine(compiled)
    callers = [world.member_credential(*world.new_member()) for _ in range(CHAINS)]
    for caller in callers:
        assert engine.visible_tools(caller, now=NOW) == frozenset(names)
    held = sum(len(shown) for shown in engine._visible.values())
    assert held <= budget, f"{held} names kept for {CHAINS} chains' previews (budget {budget})"
    # an evicted chain's preview is made again, the same
    assert engine.visible_tools(callers[0], now=NOW) == frozenset(names)


NESTED = {
    "type": "object",
    "properties": {
        "x": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
        "s": {"type": "array", "items": {"type": "string"}},
    },
}


def test_gates_2_a_call_of_too_many_values_is_denied_before_it_is_judged() -> None:
    world = make_world()
    member = world.credential(world.support_chain, world.support)
    compiled = compile_policies(
        '@id("all") permit(principal, action, resource);\n', "", {"nested": NESTED}
    )
    engine = PolicyEngine(compiled)
    most = getattr(limits, "MAX_TOOL_ARGUMENT_VALUES", 16_384)  # (named by the fix)
    # `x`, `s` and each `[i]` with its item: the limit exactly
    at_limit = {"x": [[i] for i in range((most - 2) // 2)], "s": []}
    assert 2 + 2 * len(at_limit["x"]) == most
    assert engine.decide(member, ToolCall("nested", at_limit), now=NOW).allowed
    over = {"x": at_limit["x"], "s": ["one more"]}
    denied = engine.decide(member, ToolCall("nested", over), now=NOW)
    assert (denied.allowed, denied.outcome) == (False, Outcome.ARGUMENTS)
    assert denied.reason == (
        f"denied: the arguments hold more than {most} values (MAX_TOOL_ARGUMENT_VALUES)"
    )
    flat = {"s": [str(i) for i in range(most)]}
    denied = engine.decide(member, ToolCall("nested", flat), now=NOW)
    assert (denied.allowed, denied.outcome) == (False, Outcome.ARGUMENTS)


def test_gates_2_a_circular_argument_is_denied_not_followed() -> None:
    """Counted before it is encoded (the encoder refuses a cycle): given up past the limit."""
    world = make_world()
    member = world.credential(world.support_chain, world.support)
    compiled = compile_policies(
        '@id("all") permit(principal, action, resource);\n', "", {"nested": NESTED}
    )
    loop: list[object] = []
    loop.append(loop)
    denied = PolicyEngine(compiled).decide(member, ToolCall("nested", {"x": loop}), now=NOW)
    assert (denied.allowed, denied.outcome) == (False, Outcome.ARGUMENTS)


def test_gates_2_defaults_count_and_are_not_filled_past_the_limit() -> None:
    """A tool with defaults: its values are counted before the filler walks them, and again
    with the defaults filled in (each `{"id": ...}` below becomes two values, three filled)."""
    world = make_world()
    member = world.credential(world.support_chain, world.support)
    item = {
        "type": "object",
        "properties": {"id": {"type": "string"}, "k": {"type": "string", "default": "v"}},
    }
    schema = {"type": "object", "properties": {"r": {"type": "array", "items": item}}}
    compiled = compile_policies(
        '@id("all") permit(principal, action, resource);\n', "", {"filled": schema}
    )
    engine = PolicyEngine(compiled)
    most = getattr(limits, "MAX_TOOL_ARGUMENT_VALUES", 16_384)

    def call(count: int) -> ToolCall:
        return ToolCall("filled", {"r": [{"id": str(i)} for i in range(count)]})

    for count in (most, most // 2 - 1):  # too many as given; too many once filled
        assert 1 + 2 * count > most or 1 + 3 * count > most
        denied = engine.decide(member, call(count), now=NOW)
        assert (denied.allowed, denied.outcome) == (False, Outcome.ARGUMENTS), count
    assert engine.decide(member, call((most - 1) // 3), now=NOW).allowed
