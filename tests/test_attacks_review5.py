"""Adversarial review, round 5: gate evaluation, the MCP gate, trace collection and leases.

Each test asserts the secure behaviour and fails on the code it was written against (marked
xfail strict until the lead fixes it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import pytest

from tests.support.gates import TOOLS, T, make_world
from troth.clock import FixedClock
from troth.credentials import VerifiedCredential
from troth.gates import Outcome, Tool, ToolGate

NOW = T + 10
ACCESS = 'principal.hasTag("orders.access")'


def _gate(
    policies: str, tools: dict[str, Any], *functions: Callable[..., str]
) -> tuple[ToolGate, VerifiedCredential]:
    world = make_world()
    store = world.store(world.bundle(policies=policies, tools=tools))
    declared = [Tool.from_function(f) for f in functions]
    gate = ToolGate(world.point(store), declared, clock=FixedClock(NOW))
    return gate, world.credential(world.support_chain, world.support)


# -- gate evaluation: what Cedar judges is not what the tool runs ------------------------------


@pytest.mark.xfail(
    strict=True,
    reason="the gate decides on the arguments as sent; the tool (and an MCP upstream) fills in "
    "a default the agent omitted, so a forbid on the default value never applies",
)
def test_an_omitted_argument_is_judged_with_the_default_the_tool_runs_with() -> None:
    # The author follows docs/policy.md ("Optional arguments need `context.args has note`") to
    # forbid exports in clear CSV. The agent omits `fmt`: Cedar sees no `fmt`, the forbid does
    # not apply, and the tool runs with its default, "csv".
    ran: list[str] = []

    def export_customers(fmt: Literal["csv", "json"] = "csv") -> str:
        """Export every customer."""
        ran.append(fmt)
        return f"customers.{fmt}"

    policies = f"""\
@id("export") permit(principal, action == Action::"invoke:export_customers", resource)
  when {{ {ACCESS} }};
@id("no-csv") forbid(principal, action == Action::"invoke:export_customers", resource)
  when {{ context.args has fmt && context.args.fmt == "csv" }};
"""
    tools = {"export_customers": TOOLS["export_customers"]}
    gate, member = _gate(policies, tools, export_customers)
    explicit = gate.invoke(member, "export_customers", {"fmt": "csv"})
    assert explicit.decision.policies == ("no-csv",)
    assert not explicit.allowed
    omitted = gate.invoke(member, "export_customers", {})
    assert ran == []  # the CSV export must not run
    assert not omitted.allowed


def transfer(account: int, amount: int) -> str:
    """Move money to an account."""
    return f"moved {amount} to {account}"


@pytest.mark.xfail(
    strict=True,
    reason="tool arguments are not I-JSON: an integer past 2^53 - 1 is judged exactly by Cedar "
    "but read as another number by an upstream that parses JSON numbers as doubles",
)
def test_an_integer_past_2_53_is_refused_not_judged_as_another_number() -> None:
    # A frozen account is forbidden by number. 2^53 + 1 is not that number for Cedar (i64),
    # but every double-based JSON parser (JavaScript's JSON.parse: the TypeScript MCP SDK's
    # servers) reads it as 2^53, the frozen account. troth holds all JSON it reads to RFC 7493
    # (integers within +-(2^53 - 1): docs/formats.md); tool arguments must be held to it too.
    frozen = 2**53
    smuggled = frozen + 1
    assert float(smuggled) == frozen  # what a double-based upstream acts on
    policies = f"""\
@id("transfer") permit(principal, action == Action::"invoke:transfer", resource)
  when {{ {ACCESS} }};
@id("frozen") forbid(principal, action == Action::"invoke:transfer", resource)
  when {{ context.args.account == {frozen} }};
"""
    schema = Tool.from_function(transfer).input_schema
    gate, member = _gate(policies, {"transfer": schema}, transfer)
    direct = gate.invoke(member, "transfer", {"account": frozen, "amount": 5})
    assert direct.decision.policies == ("frozen",)
    smuggled_call = gate.invoke(member, "transfer", {"account": smuggled, "amount": 5})
    assert not smuggled_call.allowed
    assert smuggled_call.decision.outcome is Outcome.ARGUMENTS
