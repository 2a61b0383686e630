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
from troth.gates import LeaseRequest, Outcome, ServiceCall, ToolCall
from troth.gates.engine import Request

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


class Shown(str):
    """A str that formats as another text: the engine checked one name, Cedar judged another."""

    shown: str

    def __new__(cls, value: str, shown: str) -> Shown:
        made = super().__new__(cls, value)
        made.shown = shown
        return made

    def __format__(self, spec: str) -> str:
        return self.shown

    def __str__(self) -> str:
        return self.shown


SERVICE_POLICIES = (
    '@id("status") permit(principal, action == Action::"status", resource == Service::"orders");\n'
    '@id("db") permit(principal, action == Action::"lease", resource == Secret::"orders-db");\n'
)


@pytest.mark.parametrize(
    "request_",
    [
        ServiceCall("orders", Shown("cancel", "status")),
        ServiceCall(Shown("orders", "orders"), "status"),
        LeaseRequest(Shown("other-db", "orders-db")),
        LeaseRequest("orders-db", (Shown("a", "b"),)),
        LeaseRequest("orders-db", (1,)),  # type: ignore[arg-type]
        LeaseRequest("orders-db", ttl=True),
        ToolCall(Shown("lookup_order", "lookup_order"), {"order_id": "1"}),
    ],
    ids=["method", "service", "secret", "scope", "scope-int", "ttl-bool", "tool"],
)
def test_names_that_are_not_exactly_str_are_unknown(request_: Request) -> None:
    """Review 50d, gates 2 (more): a ServiceCall's method or a lease's secret of a `str`
    subclass formatting as another name was checked as one (declared) and decided by Cedar as
    the other (`Action::"status"`): `cancel` allowed where only `status` is permitted."""
    world = make_world()
    store = world.store(
        world.bundle(
            policies=POLICIES + SERVICE_POLICIES, services={"orders": ["status", "cancel"]}
        )
    )
    caller = world.credential(world.support_chain, world.support)
    decision = world.point(store).decide(caller, request_, now=T + 10)
    assert not decision.allowed
    assert decision.outcome is Outcome.UNKNOWN_REQUEST
