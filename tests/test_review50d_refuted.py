"""Review 50d, refuted: attacks on caveats and the gates that failed (the code was right).
Tool arguments crafted to pass a caveat (type confusion, Unicode forms, lone surrogates,
`like` wildcards, deep values, NaN) are denied; a caveat written for a tool call is not
satisfied by a `verify` context lacking `args`, nor a verify-time caveat by a tool call."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest

from tests.support.gates import POLICIES, TOOLS, T, make_world
from troth._api.verifier import caveat_context, check_caveats
from troth.errors import ArgumentError, CredentialFailure
from troth.gates import ToolCall

CAFE = unicodedata.normalize("NFC", "café")
GATED: dict[str, Any] = {
    **TOOLS,
    "note": {
        "type": "object",
        "properties": {"text": {"type": "string"}, "n": {"type": "integer"}},
    },
}
NOTE = POLICIES + '@id("note") permit(principal, action == Action::"invoke:note", resource);\n'


def _sub_decide(caveat: str, arguments: dict[str, Any], tool: str = "note") -> Any:
    world = make_world(sub_caveats=(caveat,))
    point = world.point(world.store(world.bundle(policies=NOTE, tools=GATED)))
    caller = world.credential(world.sub_chain, world.sub)
    return point.decide(caller, ToolCall(tool, arguments), now=T + 10)


@pytest.mark.parametrize(
    ("caveat", "arguments"),
    [
        # another Unicode form of the text the caveat names: not equal, denied
        (f'context.args.text == "{CAFE}"', {"text": unicodedata.normalize("NFD", CAFE)}),
        ('context.args.text == "4471"', {"text": "\uff14\uff14\uff17\uff11"}),  # fullwidth digits
        ('context.args.text == "4471"', {"text": "4471\u200b"}),  # a zero-width space
        ('context.args.text like "4471"', {"text": "*"}),  # `*` in the value is no wildcard
        ('context.args.text == "\\u{d7ff}"', {"text": "\ud800"}),  # a lone surrogate
        ("context.args.n <= 100", {"n": True}),  # a bool is no Long
        ("context.args.n <= 100", {"n": float("nan")}),
        ("context.args.n <= 100", {"n": -(2**63) - 1}),  # past i64
        ("context.args.n <= 100", {"n": 1.0}),  # a float is no Long
        ("context.args.n <= 100", {"n": "1"}),
        ("context.args.n <= 100", {}),  # omitted: the caveat errors, denied
        ('context.args.text == "a"', {"text": ["a"]}),
        ('context.args.text == "a"', {"text": "a" * 2_000_000}),  # past the size limit
        ('context.complaint == "123"', {"text": "x"}),  # a verify-time caveat: errors here
    ],
)
def test_tool_arguments_that_do_not_pass_a_caveat(caveat: str, arguments: dict[str, Any]) -> None:
    decision = _sub_decide(caveat, arguments)
    assert not decision.allowed, decision


def test_the_caveat_passes_its_own_value() -> None:
    """The control: the same caveats hold for the values they name."""
    assert _sub_decide(f'context.args.text == "{CAFE}"', {"text": CAFE}).allowed
    assert _sub_decide("context.args.n <= 100", {"n": 100}).allowed


def test_tool_arguments_nested_past_cedar_are_denied() -> None:
    deep: Any = "x"
    for _ in range(400):  # within Python's recursion limit, past Cedar's JSON depth
        deep = [deep]
    decision = _sub_decide('context.args.text == "a"', {"text": "a", "extra": deep})
    assert not decision.allowed


def _verified_sub(caveat: str) -> Any:
    world = make_world(sub_caveats=(caveat,))
    return world.credential(world.sub_chain, world.sub)


@pytest.mark.parametrize(
    ("caveat", "context", "reason"),
    [
        ("context.args.amount <= 100", {"amount": 1}, CredentialFailure.CAVEAT_UNEVALUATED),
        (
            'context.complaint == "123"',
            {"complaint": "\uff11\uff12\uff13"},
            CredentialFailure.CAVEAT_UNSATISFIED,
        ),
        ("context.now < 0", {}, CredentialFailure.CAVEAT_UNSATISFIED),  # `now` is troth's
    ],
)
def test_verify_contexts_that_do_not_pass(
    caveat: str, context: dict[str, Any], reason: CredentialFailure
) -> None:
    check = check_caveats(_verified_sub(caveat), caveat_context(context, T + 10))
    assert (check.held, check.reason) == (False, reason)


def test_a_verify_context_nested_past_cedar_is_refused_not_a_crash() -> None:
    deep: Any = "x"
    for _ in range(400):
        deep = [deep]
    # since review 51e (verify 1) such a context is refused when it is made (MAX_JSON_DEPTH),
    # before Cedar sees it: a typed ArgumentError, not a crash
    with pytest.raises(ArgumentError, match="nested more than"):
        caveat_context({"complaint": "123", "deep": deep}, T + 10)


@pytest.mark.parametrize(
    "context",
    [{"now": 0}, {"x": float("nan")}, {"x": object()}, {1: "x"}, {True: "x"}],
    ids=["now", "nan", "object", "int-key", "bool-key"],
)
def test_verify_contexts_that_are_no_json_record(context: dict[Any, Any]) -> None:
    with pytest.raises(ArgumentError):
        caveat_context(context, T + 10)
