"""Review 50d, gates 2: a direct engine caller's argument keys that are not `str` (`True`,
`1`, a `str` subclass hashing differently) were encoded by JSON as text (`"true"`, `"1"`)
while the tool schema's checks (enum, const, the I-JSON integer range) look a property up by
its `str` name: a property named `true` with an enum was judged by Cedar with a value the
enum check never saw. The engine now denies such arguments (Outcome.ARGUMENTS) before Cedar;
the gates pass only `str` keys (JSON objects, keyword arguments)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.gates import POLICIES, TOOLS, T, make_world
from troth.gates import Outcome, ToolCall

PICK_TOOLS: dict[str, Any] = {
    **TOOLS,
    "pick": {
        "type": "object",
        "properties": {
            "true": {"type": "string", "enum": ["safe"]},
            "inner": {
                "type": "object",
                "properties": {"false": {"type": "string", "enum": ["safe"]}},
            },
        },
    },
}
PICK = POLICIES + '@id("pick") permit(principal, action == Action::"invoke:pick", resource);\n'


class Shifty(str):
    """A str whose hash is not its text's: `"true" in args` misses it, JSON writes "true"."""

    def __hash__(self) -> int:
        return 7

    def __eq__(self, other: object) -> bool:
        return other is self


def _decide(arguments: dict[Any, Any]) -> Any:
    world = make_world()
    point = world.point(world.store(world.bundle(policies=PICK, tools=PICK_TOOLS)))
    caller = world.credential(world.support_chain, world.support)
    return point.decide(caller, ToolCall("pick", arguments), now=T + 10)


def test_string_keys_are_judged() -> None:
    assert _decide({"true": "safe"}).allowed
    assert _decide({"true": "evil"}).outcome is Outcome.ARGUMENTS
    assert _decide({"inner": {"false": "evil"}}).outcome is Outcome.ARGUMENTS


@pytest.mark.parametrize(
    "arguments",
    [
        {True: "evil"},
        {"inner": {False: "evil"}},
        {Shifty("true"): "evil"},
        {1: "x"},
        {None: "x"},
        {"inner": {1.5: "x"}},
    ],
    ids=["bool", "nested-bool", "str-subclass", "int", "none", "nested-float"],
)
def test_keys_that_are_not_str_are_denied(arguments: dict[Any, Any]) -> None:
    decision = _decide(arguments)
    assert not decision.allowed
    assert decision.outcome is Outcome.ARGUMENTS
