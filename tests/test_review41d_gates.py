"""Review 41d, gates: caller-controlled tool arguments against the engine (docs/policy.md,
"Tool arguments"; src/troth/gates/toolschema.py).

gates 1: integers are held to I-JSON (±(2^53 - 1)) so that an upstream reading JSON numbers
as doubles runs with the number Cedar judged. The check tested `type(value) is int`, so an
`int` subclass (an `IntEnum` member, say) passed unchecked: a direct caller of the decision
point (`DecisionPoint.decide` / `PolicyEngine.decide`, which a library gate forwards from)
had 2^53 + 1 judged by Cedar and permitted, where the plain integer is denied.

The other tests pin attempts that were refuted when the review began: argument values that
use Cedar's JSON escapes (`__entity`, `__extn`) at the top, in a record or in a set, a float
for an integer, duplicated set members, and nesting past Cedar's parser are all denied.
"""

from __future__ import annotations

import enum
from typing import Any

import pytest

from tests.support.gates import T, make_world
from troth.credentials import VerifiedCredential
from troth.gates import DecisionPoint, Outcome, ToolCall

TOOLS: dict[str, Any] = {
    "t": {
        "type": "object",
        "properties": {
            "n": {"type": "integer"},
            "s": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "r": {"type": "object", "properties": {"x": {"type": "string"}}},
        },
    }
}
POLICIES = """\
@id("small") permit(principal, action == Action::"invoke:t", resource)
  when { context.args has n && context.args.n >= 0 };
@id("no-n") permit(principal, action == Action::"invoke:t", resource)
  unless { context.args has n };
@id("no-admin") forbid(principal, action == Action::"invoke:t", resource)
  when { context.args has s && context.args.s == "admin" };
@id("no-admin-tag") forbid(principal, action == Action::"invoke:t", resource)
  when { context.args has tags && context.args.tags.contains("admin") };
"""
BIG = 2**53 + 1


class Big(enum.IntEnum):
    """An int subclass a caller may hand over without meaning any harm."""

    VALUE = BIG


def _setup() -> tuple[DecisionPoint, VerifiedCredential]:
    world = make_world()
    point = world.point(world.store(world.bundle(policies=POLICIES, tools=TOOLS)))
    return point, world.credential(world.support_chain, world.support)


def test_an_int_subclass_past_i_json_is_denied_as_a_plain_one() -> None:
    """gates 1: 2^53 + 1 as an `IntEnum` member is denied as the arguments (as the plain
    integer is), never judged by Cedar and permitted. Was a strict xfail until
    `toolschema._safe_integer` tested `isinstance` (an int subclass is range-checked too)."""
    point, caller = _setup()
    plain = point.decide(caller, ToolCall("t", {"n": BIG}), now=T + 10)
    assert (plain.allowed, plain.outcome) == (False, Outcome.ARGUMENTS)
    small = point.decide(caller, ToolCall("t", {"n": Big.VALUE - BIG + 5}), now=T + 10)
    assert (small.allowed, small.policies) == (True, ("small",))
    sub = point.decide(caller, ToolCall("t", {"n": Big.VALUE}), now=T + 10)
    assert (sub.allowed, sub.outcome) == (False, Outcome.ARGUMENTS)


ENTITY = {"__entity": {"type": "Agent", "id": "x"}}


@pytest.mark.parametrize(
    "arguments",
    [
        ENTITY,  # the whole arguments record as an entity reference
        {"s": {"__extn": {"fn": "decimal", "arg": "1.0"}}},
        {"r": ENTITY},
        {"tags": [ENTITY]},
        {"n": 5.0},  # a float for an integer (an upstream may read it as 5)
        {"n": "5"},
        {"s": None},
        {"r": None},
        {"s": "adm\ud800in"},  # a lone surrogate: no text Cedar and an upstream read alike
    ],
)
def test_arguments_using_cedars_json_escapes_or_other_types_are_denied(
    arguments: dict[str, Any],
) -> None:
    """Refuted: a value in Cedar's JSON escape forms, or of another type than the schema's,
    never becomes an entity, an extension value or a coerced scalar: it is denied as the
    arguments, before any permit is read."""
    point, caller = _setup()
    decision = point.decide(caller, ToolCall("t", arguments), now=T + 10)
    assert (decision.allowed, decision.outcome) == (False, Outcome.ARGUMENTS)
    assert decision.reason == "denied: the arguments do not match the tool's input schema"


def test_duplicates_and_nesting_do_not_slip_past_a_forbid() -> None:
    """Refuted: a forbidden set member repeated is still denied (since review 51f, gates 1,
    before Cedar, as the arguments: a repeated item is one a Set keeps once; alone, the
    forbid denies it); a set nested 900 deep (past Cedar's JSON parser, within Python's
    encoder) is denied as the arguments, not an error that reads as no decision."""
    point, caller = _setup()
    twice = point.decide(caller, ToolCall("t", {"tags": ["admin", "admin"]}), now=T + 10)
    assert (twice.allowed, twice.outcome) == (False, Outcome.ARGUMENTS)
    once = point.decide(caller, ToolCall("t", {"tags": ["admin"]}), now=T + 10)
    assert (once.allowed, once.policies) == (False, ("no-admin-tag",))
    deep: Any = "x"
    for _ in range(900):
        deep = [deep]
    nested = point.decide(caller, ToolCall("t", {"tags": deep}), now=T + 10)
    assert (nested.allowed, nested.outcome) == (False, Outcome.ARGUMENTS)
