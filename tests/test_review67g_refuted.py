"""Review 67g (gates: Cedar argument handling, tool visibility, the CLI's --json outputs):
attacks that did not work, each kept as a test of the defence it names.

- Argument values and keys spelled as Cedar's JSON escapes (`__entity`, `__extn` for an ip or
  a decimal), or keys with dots, are denied before Cedar reads them, and the tool never runs.
- Numbers Cedar or an upstream could read otherwise (a float, a bool, past I-JSON or i64, NaN,
  infinities) are denied as arguments that do not fit, never judged as a Long.
- Another spelling of a tool the caller is shown (case, whitespace, a newline, fullwidth or
  zero-width characters) is denied as a tool the bundle does not declare: names are compared
  exactly, and no spelling but the declared one runs.
- A tool declared under a name outside MCP's charset (fullwidth, a space, empty, too long) is
  refused when declared (PolicyError), so no spelling but the exact ASCII one can be served.
- Arguments absent (None), not an object, missing a required property, or null where a value
  is required are denied, never a crash; nested past the recursion limit or over
  MAX_TOOL_ARGUMENTS_BYTES, denied without an exception.
- A `forbid` that errors on the arguments (a Long overflow on an amount within I-JSON) does not
  drop out of the decision as Cedar drops an erroring policy: the call is denied
  (EVALUATION_ERROR), though the permit is satisfied. An extension constructor (`ip`,
  `decimal`) can never be handed an argument: a policy calling one on a non-literal is refused
  when the bundle is made.
- `troth policy test --json` given hostile --args (duplicate keys, NaN, nesting past
  MAX_JSON_DEPTH, not an object, Cedar escapes, a float) or another spelling of the tool prints
  one JSON document only, with exit 2 (a usage error) or 1 (denied), never 0 or a traceback.
  (A sweep of every command taking --json with missing, garbage and odd operands, run by hand
  over a fresh home, found none printing text or a traceback on stdout either.)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.support.gates import T, export_customers, lookup_order, make_world
from tests.test_gates_cli import create, desk  # noqa: F401  (the fixture)
from troth import limits
from troth.cli.main import cli
from troth.clock import FixedClock
from troth.credentials import VerifiedCredential
from troth.errors import PolicyError, PolicyFailure
from troth.gates import ListRecorder, Outcome, Tool, ToolGate, schema_from_function

RAN: list[tuple[str, int]] = []


def refund(order_id: str, amount: int) -> str:
    """Refund part of an order (records that it ran)."""
    RAN.append((order_id, amount))
    return "refunded"


@pytest.fixture(scope="module")
def gated() -> tuple[ToolGate, VerifiedCredential]:
    """A gate of the support desk's tools (refund capped at 1000 by a forbid) and the support
    agent, who may refund."""
    tools = [Tool.from_function(f) for f in (lookup_order, refund, export_customers)]
    world = make_world()
    bundle = world.bundle(tools={t.name: t.input_schema for t in tools})
    gate = ToolGate(
        world.point(world.store(bundle), ListRecorder()), tools, clock=FixedClock(T + 10)
    )
    return gate, world.credential(world.support_chain, world.support)


def _denied(gated: tuple[ToolGate, VerifiedCredential], tool: str, args: Any) -> Outcome:
    gate, caller = gated
    RAN.clear()
    result = gate.invoke(caller, tool, args)
    assert not result.allowed
    assert RAN == []  # the tool never ran
    return result.decision.outcome


def test_refuted_the_baseline_is_allowed(gated: tuple[ToolGate, VerifiedCredential]) -> None:
    gate, caller = gated
    assert [t.name for t in gate.available_tools(caller)] == ["lookup_order", "refund"]
    RAN.clear()
    assert gate.invoke(caller, "refund", {"order_id": "o1", "amount": 20}).allowed
    assert RAN == [("o1", 20)]


@pytest.mark.parametrize(
    "args",
    [
        {"order_id": {"__entity": {"type": "Agent", "id": "x"}}, "amount": 20},
        {"order_id": {"__extn": {"fn": "ip", "arg": "10.0.0.1"}}, "amount": 20},
        {"order_id": "o1", "amount": {"__extn": {"fn": "decimal", "arg": "1.0"}}},
        {"order_id": "o1", "amount": 20, "__entity": {"type": "Agent", "id": "x"}},
        {"order_id": "o1", "amount": 20, "amount.x": 5000},
        {"order_id": "o1", "amount": 20, "amount ": 5000},
    ],
    ids=["entity-value", "ip-value", "decimal-value", "entity-key", "dotted-key", "spaced-key"],
)
def test_refuted_cedar_escapes_in_arguments_are_denied(
    gated: tuple[ToolGate, VerifiedCredential], args: dict[str, Any]
) -> None:
    assert _denied(gated, "refund", args) is Outcome.ARGUMENTS


@pytest.mark.parametrize(
    "amount",
    [20.0, 5000.0, True, 2**53 + 1, 2**63, -(2**63) - 1, math.nan, math.inf, "20"],
    ids=["float", "float-over", "bool", "past-ijson", "past-i64", "below-i64", "nan", "inf", "str"],
)
def test_refuted_numbers_read_otherwise_are_denied(
    gated: tuple[ToolGate, VerifiedCredential], amount: object
) -> None:
    assert _denied(gated, "refund", {"order_id": "o1", "amount": amount}) is Outcome.ARGUMENTS


@pytest.mark.parametrize(
    "name",
    [
        "Refund",
        "REFUND",
        " refund",
        "refund ",
        "refund\n",
        "\uff52\uff45\uff46\uff55\uff4e\uff44",
        "re\u200bfund",
        "",
    ],
)
def test_refuted_another_spelling_of_a_shown_tool_is_undeclared(
    gated: tuple[ToolGate, VerifiedCredential], name: str
) -> None:
    outcome = _denied(gated, name, {"order_id": "o1", "amount": 20})
    assert outcome is Outcome.UNKNOWN_REQUEST


@pytest.mark.parametrize("name", ["\uff52efund", "a b", "", "x" * (limits.MAX_TOOL_NAME + 1)])
def test_refuted_a_tool_is_declared_by_an_exact_ascii_name_only(name: str) -> None:
    with pytest.raises(PolicyError) as refused:
        Tool(name, {"type": "object", "properties": {}})
    assert refused.value.reason is PolicyFailure.SCHEMA_INVALID


def _deep(levels: int) -> dict[str, Any]:
    top: dict[str, Any] = {}
    node = top
    for _ in range(levels):
        node["a"] = {}
        node = node["a"]
    return top


@pytest.mark.parametrize(
    "args",
    [
        None,
        [("order_id", "o1"), ("amount", 20)],
        {"order_id": "o1"},
        {"order_id": "o1", "amount": None},
        {"order_id": "o1", "amount": 20, "x": _deep(5_000)},
        {"order_id": "o" * (limits.MAX_TOOL_ARGUMENTS_BYTES + 1), "amount": 20},
        {"order_id": "o1\x00", "amount": 20},
        {"order_id": "o1", "amount": 20, 1: 2},
    ],
    ids=["none", "pairs", "omitted", "null", "deep", "huge", "nul", "int-key"],
)
def test_refuted_absent_odd_deep_and_huge_arguments_are_denied(
    gated: tuple[ToolGate, VerifiedCredential], args: Any
) -> None:
    assert _denied(gated, "refund", args) is Outcome.ARGUMENTS


PAY_POLICIES = """\
@id("pay") permit(principal, action == Action::"invoke:pay", resource);
@id("cap") forbid(principal, action == Action::"invoke:pay", resource)
  when { context.args.amount * 10000000000 > 10000000000000 };
"""


def pay(amount: int) -> str:
    """Pay an amount (records that it ran)."""
    RAN.append(("pay", amount))
    return "paid"


def test_refuted_a_forbid_erroring_on_the_arguments_still_denies() -> None:
    tools = [Tool.from_function(pay)]
    world = make_world()
    bundle = world.bundle(policies=PAY_POLICIES, tools={"pay": tools[0].input_schema})
    gate = ToolGate(world.point(world.store(bundle)), tools, clock=FixedClock(T + 10))
    caller = world.credential(world.support_chain, world.support)
    RAN.clear()
    assert gate.invoke(caller, "pay", {"amount": 10}).allowed
    assert not gate.invoke(caller, "pay", {"amount": 5000}).allowed  # the forbid applies
    overflow = gate.invoke(caller, "pay", {"amount": 2**53 - 1})  # the forbid errors
    assert not overflow.allowed
    assert overflow.decision.outcome is Outcome.EVALUATION_ERROR
    assert RAN == [("pay", 10)]


def test_refuted_an_extension_constructor_is_never_handed_an_argument() -> None:
    policies = PAY_POLICIES + (
        '@id("ip") forbid(principal, action, resource) when { ip(context.args.host).isLoopback() };'
    )
    world = make_world()
    with pytest.raises(PolicyError) as refused:
        world.bundle(policies=policies, tools={"pay": schema_from_function(pay)})
    assert refused.value.reason is PolicyFailure.POLICIES_INVALID
    assert any("non-literal" in message for message in refused.value.messages)


HOSTILE = [  # (tool, --args, exit code, the error's type or the decision's outcome)
    ("refund", '{"order_id": "o1", "amount": 5000, "amount": 20}', 2, "BadParameter"),
    ("refund", '{"order_id": "o1", "amount": NaN}', 2, "BadParameter"),
    ("refund", '{"a":' * 40 + "1" + "}" * 40, 2, "BadParameter"),
    ("refund", "null", 2, "BadParameter"),
    ("refund", '{"order_id": "o1", "amount": 20}x', 2, "BadParameter"),
    ("refund", '{"order_id": "o1", "amount": 20.0}', 1, "arguments"),
    (
        "refund",
        '{"order_id": {"__entity": {"type": "Agent", "id": "x"}}, "amount": 20}',
        1,
        "arguments",
    ),
    ("refund", '{"order_id": "o1", "amount": 99999999999999999999}', 2, "BadParameter"),
    ("Refund", '{"order_id": "o1", "amount": 20}', 1, "unknown-request"),
]


def test_refuted_policy_test_json_prints_one_document_on_hostile_arguments(
    desk: dict[str, str],  # noqa: F811  (the fixture)
) -> None:
    create(desk, "admin", "b1", "--revision", "1", "--ttl", "30m")
    command = [
        "policy",
        "test",
        "--bundle",
        str(Path(desk["dir"]) / "b1"),
        "--chain",
        desk["chain"],
    ]
    for tool, args, code, what in HOSTILE:
        result = CliRunner().invoke(
            cli,
            [*command, "--tool", tool, "--args", args, "--authority", "acme", "--json"],
        )
        assert result.exit_code == code, (tool, args, result.stdout, result.stderr)
        document = json.loads(result.stdout)  # the whole of stdout: one JSON document
        assert isinstance(document, dict)
        assert document.get("error", document.get("outcome")) == what
