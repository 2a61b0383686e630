"""Review 65g: attacks on the gates that did not work, each kept as a test of the defence it
names (it fails if that defence breaks).

- Arguments that pass validation but mean something else to the tool: an integer given as a
  float (`1000.0`, `1e300`, `inf`), a string (`"5"`), a bool (`True` is 1 to Python and to a
  lax upstream), past I-JSON (`2**53 + 1`, `2**63`, `-2**63`): each denied `arguments` before
  Cedar, the tool never run (toolschema's exact types, `_safe_integer`). An enum of integers
  given `True` or `1.0` (equal to 1 in Python's `in`): denied. A repeated array item, or a
  string where an array is declared: denied.
- Calling a hidden or undeclared tool by another spelling of a declared one (case, a trailing
  space, a full-width letter, a zero-width space, the Cedar action's own name `invoke:refund`):
  each told `unknown-request`, never run (the gate's tools keyed by exact name; NAME is ASCII).
- A Cedar evaluation error in a permit shown in the listing (an overflow after an unknown
  argument, which the preview cannot fold): the call is denied `evaluation-error`, the tool never
  run (only Allow with zero errors allows).
- The decision store's fast path (review 64g: a bundle passed again on its feed's age alone):
  the same feed object past the staleness limit, and a newer feed revoking the bundle's
  policy-admin signer, each put the bundle out of force at the next decision.
"""

from __future__ import annotations

from typing import Literal

import pytest

from tests.support.gates import POLICIES as SUPPORT_POLICIES
from tests.support.gates import (
    GatesWorld,
    T,
    export_customers,
    lookup_order,
    make_world,
    refund,
)
from tests.test_gates_bundles import decode_chain_hash
from troth.clock import FixedClock
from troth.credentials import RevocationKind
from troth.gates import ListRecorder, Outcome, Tool, ToolCall, ToolGate

NOW = T + 10


def _runs() -> tuple[list[str], list[Tool]]:
    """The three support tools, each recording its runs."""
    ran: list[str] = []

    def record(name: str, func: object) -> Tool:
        def run(**kwargs: object) -> str:
            ran.append(name)
            return "ran"

        tool = Tool.from_function(func)  # type: ignore[arg-type]
        return Tool(tool.name, tool.input_schema, run)

    return ran, [record(f.__name__, f) for f in (lookup_order, refund, export_customers)]


@pytest.fixture(scope="module")
def world() -> GatesWorld:
    return make_world()


def _gate(world: GatesWorld, tools: list[Tool], policies: str = SUPPORT_POLICIES) -> ToolGate:
    schemas = {tool.name: tool.input_schema for tool in tools}
    store = world.store(world.bundle(policies=policies, tools=schemas))
    return ToolGate(world.point(store, ListRecorder()), tools, clock=FixedClock(NOW))


@pytest.mark.parametrize(
    "amount", [1000.0, 5.0, 1e300, float("inf"), "5", True, 2**53 + 1, 2**63, -(2**63)]
)
def test_an_integer_in_another_guise_is_denied_unrun(world: GatesWorld, amount: object) -> None:
    ran, tools = _runs()
    gate = _gate(world, tools)
    member = world.credential(world.support_chain, world.support)
    result = gate.invoke(member, "refund", {"order_id": "o", "amount": amount})
    assert (result.allowed, result.decision.outcome) == (False, Outcome.ARGUMENTS)
    assert ran == []
    assert gate.invoke(member, "refund", {"order_id": "o", "amount": 5}).allowed  # the control


def level(n: Literal[0, 1]) -> str:
    """Set a level."""
    return f"level {n}"


def tag(names: list[str]) -> str:
    """Tag an order."""
    return f"tagged {names}"


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("level", {"n": True}),
        ("level", {"n": 1.0}),
        ("level", {"n": "1"}),
        ("tag", {"names": ["x", "x"]}),
        ("tag", {"names": "root"}),
    ],
)
def test_an_enum_or_set_in_another_guise_is_denied(
    world: GatesWorld, tool: str, arguments: dict[str, object]
) -> None:
    tools = [Tool.from_function(level), Tool.from_function(tag)]
    policies = (
        '@id("l") permit(principal, action == Action::"invoke:level", resource);\n'
        '@id("t") permit(principal, action == Action::"invoke:tag", resource)'
        ' unless { context.args.names.contains("root") };\n'
    )
    gate = _gate(world, tools, policies)
    member = world.credential(world.support_chain, world.support)
    result = gate.invoke(member, tool, arguments)
    assert (result.allowed, result.decision.outcome) == (False, Outcome.ARGUMENTS)
    assert gate.invoke(member, "level", {"n": 1}).allowed  # the control


@pytest.mark.parametrize(
    "name", ["Refund", "REFUND", "refund ", "\uff52efund", "refund\u200b", "invoke:refund"]
)
def test_another_spelling_of_a_tool_is_no_tool(world: GatesWorld, name: str) -> None:
    ran, tools = _runs()
    gate = _gate(world, tools)
    member = world.credential(world.support_chain, world.support)
    result = gate.invoke(member, name, {"order_id": "o", "amount": 5})
    assert (result.allowed, result.decision.outcome) == (False, Outcome.UNKNOWN_REQUEST)
    assert ran == []


def test_an_erring_permit_shown_in_the_listing_still_denies(world: GatesWorld) -> None:
    ran, tools = _runs()
    policies = (
        '@id("p") permit(principal, action == Action::"invoke:lookup_order", resource)'
        ' when { context.args.order_id == "o" && 9223372036854775807 + 1 > 0 };\n'
    )
    gate = _gate(world, tools, policies)
    member = world.credential(world.support_chain, world.support)
    result = gate.invoke(member, "lookup_order", {"order_id": "o"})
    assert (result.allowed, result.decision.outcome) == (False, Outcome.EVALUATION_ERROR)
    assert ran == []


def test_the_fast_path_goes_stale_with_its_feed() -> None:
    world = make_world()
    store = world.store(world.bundle())
    point = world.point(store)
    member = world.credential(world.support_chain, world.support)
    call = ToolCall("lookup_order", {"order_id": "o"})
    staleness = world.verifier.policy.max_feed_staleness
    assert point.decide(member, call, now=NOW).allowed
    assert point.decide(member, call, now=NOW + 1).allowed  # the fast path, the same feed
    late = world.feed.issued_at + staleness + 1
    decision = point.decide(member, call, now=late)
    assert (decision.allowed, decision.outcome) == (False, Outcome.NOT_IN_FORCE)


def test_the_fast_path_takes_a_newer_feed_revoking_the_signer() -> None:
    world = make_world()
    store = world.store(world.bundle(by_admin=True))
    point = world.point(store)
    member = world.credential(world.support_chain, world.support)
    call = ToolCall("lookup_order", {"order_id": "o"})
    assert point.decide(member, call, now=NOW).allowed
    assert point.decide(member, call, now=NOW + 1).allowed  # the fast path
    world.revoke(RevocationKind.CREDENTIAL, decode_chain_hash(world.admin_chain), now=NOW + 2)
    decision = point.decide(member, call, now=NOW + 3)
    assert (decision.allowed, decision.outcome) == (False, Outcome.NOT_IN_FORCE)
    assert "revoked" in decision.reason
