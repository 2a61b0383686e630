"""Decisions on Cedar: only "Allow with zero errors" allows (the traps), reasons never echo
argument values, the entities of a chain, caveats that can only remove authority, service and
lease requests, and gate 1 (a tool no permit can allow is never listed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cedarpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.gates import POLICIES, TOOLS, T, make_world
from troth.credentials import VerifiedCredential
from troth.errors import PolicyError, PolicyFailure
from troth.gates import (
    LeaseRequest,
    Outcome,
    PolicyEngine,
    ServiceCall,
    ToolCall,
    check_caveat,
    compile_policies,
)
from troth.gates.engine import fragment_ids

NOW = T + 10
CANARY = "sk-canary-7f3a9c1e"
HOLDS = 'principal.hasTag("orders.access") && principal.getTag("orders.access").contains'
INJECTION = (
    "true }; permit(principal, action, resource); forbid(principal, action, resource) unless { true"
)


def engine(policies: str = POLICIES, services: dict[str, list[str]] | None = None) -> PolicyEngine:
    return PolicyEngine(compile_policies(policies, "", TOOLS, services), revision=7)


def support(caveats: tuple[str, ...] = ()) -> tuple[VerifiedCredential, VerifiedCredential]:
    world = make_world(sub_caveats=caveats)
    return (
        world.credential(world.support_chain, world.support),
        world.credential(world.sub_chain, world.sub),
    )


def call(tool: str, **args: Any) -> ToolCall:
    return ToolCall(tool, args)


def test_allow_and_forbid_name_the_deciding_policies() -> None:
    member, _ = support()
    gate = engine()
    allowed = gate.decide(member, call("refund", order_id="o1", amount=20), now=NOW)
    assert (allowed.allowed, allowed.outcome, allowed.policies) == (
        True,
        Outcome.ALLOWED,
        ("refund",),
    )
    assert allowed.revision == 7
    denied = gate.decide(member, call("refund", order_id="o1", amount=5000), now=NOW)
    assert (denied.allowed, denied.outcome, denied.policies) == (
        False,
        Outcome.FORBIDDEN,
        ("refund-cap",),
    )
    assert denied.reason == "denied by policy refund-cap"
    nothing = gate.decide(member, call("export_customers", fmt="csv"), now=NOW)
    assert (nothing.outcome, nothing.policies) == (Outcome.NO_PERMIT, ())


def test_trap_a_forbid_that_errors_denies() -> None:
    # Cedar skips a forbid that errors and answers Allow: troth denies (lessons.md, "Policy").
    # The set validates; the forbid overflows at run time for amounts from 923.
    policies = POLICIES + (
        '@id("overflow") forbid(principal, action == Action::"invoke:refund", resource)\n'
        "  when { context.args.amount * 10000000000000000 > 500000000000000000 };"
    )
    member, _ = support()
    gate = engine(policies)
    assert gate.decide(member, call("refund", order_id="o", amount=10), now=NOW).allowed
    plain = gate.decide(member, call("refund", order_id="o", amount=60), now=NOW)
    assert (plain.outcome, plain.policies) == (Outcome.FORBIDDEN, ("overflow",))
    trap = gate.decide(member, call("refund", order_id="o", amount=999), now=NOW)
    assert (trap.allowed, trap.outcome, trap.policies) == (
        False,
        Outcome.EVALUATION_ERROR,
        ("refund",),  # what Cedar allowed on, the erroring forbid skipped
    )
    assert trap.errors == ("policy overflow could not be evaluated",)
    assert trap.reason == "denied: policy overflow could not be evaluated for this request"


def test_trap_a_caveat_on_a_missing_tag_denies() -> None:
    world = make_world(sub_caveats=('principal.getTag("orders.blocked").contains("no")',))
    sub = world.credential(world.sub_chain, world.sub)
    decision = engine().decide(sub, call("lookup_order", order_id="o1"), now=NOW)
    assert decision.outcome is Outcome.EVALUATION_ERROR
    assert not decision.allowed
    assert decision.policies == ("lookup",)  # Cedar's Allow, turned into a denial
    assert decision.errors == ("policy caveat:1:0 could not be evaluated",)


@pytest.mark.parametrize(
    "args",
    [
        {"order_id": "o1", "amount": "20"},  # ill-typed
        {"order_id": "o1", "amount": 20.0},  # a float is not an integer
        {"order_id": "o1", "amount": True},  # a bool is not an integer
        {"order_id": "o1"},  # missing
        {"order_id": "o1", "amount": 20, "extra": 1},  # extra
        {"order_id": "o1", "amount": 2**63},  # beyond Cedar's Long
        {"order_id": None, "amount": 20},  # null
        {"order_id": {"__entity": {"type": "Agent", "id": "T0"}}, "amount": 20},
        {"order_id": "o1", "amount": {"__extn": {"fn": "decimal", "arg": "1.0"}}},
        {"order_id": "o1", "amount": float("nan")},
        {"order_id": "o1", "amount": {1, 2}},  # not JSON
    ],
)
def test_arguments_that_do_not_match_the_schema_deny(args: dict[str, Any]) -> None:
    member, _ = support()
    decision = engine().decide(member, ToolCall("refund", args), now=NOW)
    assert (decision.allowed, decision.outcome) == (False, Outcome.ARGUMENTS)
    assert decision.reason == "denied: the arguments do not match the tool's input schema"


def test_enum_values_outside_the_schema_deny() -> None:
    member, _ = support()
    policies = '@id("all") permit(principal, action in Action::"invoke", resource);'
    gate = engine(policies)
    assert gate.decide(member, call("export_customers", fmt="csv"), now=NOW).allowed
    decision = gate.decide(member, call("export_customers", fmt="xml"), now=NOW)
    assert decision.outcome is Outcome.ARGUMENTS


def test_no_reason_or_error_echoes_an_argument_value() -> None:
    member, sub = support(("context.args.amount + 9223372036854775807 > 0",))
    policies = POLICIES + '@id("all") permit(principal, action in Action::"invoke", resource);'
    gate = engine(policies)
    requests = [
        ToolCall("refund", {"order_id": CANARY, "amount": CANARY}),
        ToolCall("refund", {"order_id": CANARY, "amount": 20, CANARY: 1}),
        ToolCall("refund", {"order_id": CANARY, "amount": 5000}),
        ToolCall("refund", {"order_id": CANARY, "amount": 900}),  # overflow error in the caveat
        ToolCall(CANARY, {"x": CANARY}),
        ToolCall("export_customers", {"fmt": CANARY}),
    ]
    for credential in (member, sub):
        for request in requests:
            decision = gate.decide(credential, request, now=NOW)
            assert CANARY not in repr(decision.to_json())
            assert "900" not in decision.reason
            assert all("900" not in e for e in decision.errors)


def test_unknown_tools_services_and_bad_names_deny() -> None:
    member, _ = support()
    gate = engine(services={"orders": ["status"]})
    assert gate.decide(member, call("nope"), now=NOW).outcome is Outcome.UNKNOWN_REQUEST
    for request in (
        ServiceCall("orders", "delete"),
        ServiceCall("billing", "status"),
        ServiceCall('orders"', "status"),
        LeaseRequest('db"; permit'),
    ):
        assert gate.decide(member, request, now=NOW).outcome is Outcome.UNKNOWN_REQUEST


def test_service_and_lease_requests_are_decided_by_the_same_engine() -> None:
    member, sub = support()
    policies = (
        '@id("status") permit(principal, action == Action::"status", resource == Service::"orders")'
        " when { principal.depth == 0 };\n"
        '@id("db") permit(principal, action == Action::"lease", resource == Secret::"orders-db")'
        f' when {{ {HOLDS}("write") }};'
    )
    gate = engine(policies, {"orders": ["status", "cancel"]})
    assert gate.decide(member, ServiceCall("orders", "status"), now=NOW).policies == ("status",)
    assert not gate.decide(sub, ServiceCall("orders", "status"), now=NOW).allowed
    assert not gate.decide(member, ServiceCall("orders", "cancel"), now=NOW).allowed
    assert gate.decide(member, LeaseRequest("orders-db"), now=NOW).allowed
    assert not gate.decide(sub, LeaseRequest("orders-db"), now=NOW).allowed
    assert not gate.decide(member, LeaseRequest("other-db"), now=NOW).allowed


def test_the_chain_facts_as_entity_attributes() -> None:
    world = make_world()
    member = world.credential(world.support_chain, world.support)
    sub = world.credential(world.sub_chain, world.sub)
    checks = {
        "root-is-member": f'principal.root == Agent::"{world.support.identifier}"',
        "delegator": "principal has delegator && "
        f'principal.delegator == Agent::"{world.support.identifier}"',
        "delegators": f'principal.delegators.contains(Agent::"{world.support.identifier}")',
        "depth-1": "principal.depth == 1",
        "purpose": 'principal.purpose == "answer complaint 123"',
        "authority": f'principal.authority == "{world.authority.identifier}"',
        "window": "principal.not_before <= context.now && context.now < principal.expires_at",
        "delegator-tags": "principal has delegator && "
        'principal.delegator.hasTag("orders.access") && '
        'principal.delegator.getTag("orders.access").contains("write")',
        "own-tags": f'{HOLDS}("read") && !principal.getTag("orders.access").contains("write")',
    }
    policies = "".join(
        f'@id("{name}") permit(principal, action == Action::"invoke:lookup_order", resource)'
        f" when {{ {cond} }};\n"
        for name, cond in checks.items()
    )
    gate = engine(policies)
    decision = gate.decide(sub, call("lookup_order", order_id="o1"), now=NOW)
    assert decision.policies == tuple(sorted(checks))
    member_ids = gate.decide(member, call("lookup_order", order_id="o1"), now=NOW).policies
    assert member_ids == ("authority", "root-is-member", "window")


# -- caveats ---------------------------------------------------------------------------------


def test_caveats_parse_as_single_conditions() -> None:
    assert check_caveat("context.args.amount <= 100").startswith("forbid(")
    assert check_caveat('context.args.note == "};permit(principal,action,resource);"')
    assert check_caveat("context.args.amount <= 100 // a trailing comment")


@pytest.mark.parametrize(
    "caveat",
    [
        INJECTION,
        "true } when { true",
        'true }; @id("x") forbid(principal, action, resource) unless { true',
        "context.args.amount <=",
        "",
        "   ",
        "x" * 1025,
        "true };\nforbid(?principal, action, resource) unless { true",
    ],
)
def test_caveat_injection_and_garbage_are_refused(caveat: str) -> None:
    with pytest.raises(PolicyError) as caught:
        check_caveat(caveat)
    assert caught.value.reason is PolicyFailure.CAVEAT_INVALID


def test_a_caveat_only_removes_authority() -> None:
    member, sub = support(("context.args.amount <= 100",))
    policies = '@id("all") permit(principal, action in Action::"invoke", resource);'
    gate = engine(policies)
    assert gate.decide(sub, call("refund", order_id="o", amount=20), now=NOW).allowed
    capped = gate.decide(sub, call("refund", order_id="o", amount=500), now=NOW)
    assert (capped.outcome, capped.policies) == (Outcome.FORBIDDEN, ("caveat:1:0",))
    # a tool without `amount`: the caveat errors, which denies
    assert gate.decide(sub, call("lookup_order", order_id="o"), now=NOW).outcome is (
        Outcome.EVALUATION_ERROR
    )
    # the member's own chain carries no caveat
    assert gate.decide(member, call("refund", order_id="o", amount=500), now=NOW).allowed


def test_the_demo_and_readme_caveat_refuses_a_negative_refund() -> None:
    # review 51f, found 3: `amount <= 100` alone let a negative amount (a charge) through
    from troth.demo.chapter4_gates import CAVEAT

    assert CAVEAT in (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    _, sub = support((CAVEAT,))
    gate = engine('@id("all") permit(principal, action in Action::"invoke", resource);')
    assert gate.decide(sub, call("refund", order_id="o", amount=20), now=NOW).allowed
    for amount in (-500, 0, 101):
        decision = gate.decide(sub, call("refund", order_id="o", amount=amount), now=NOW)
        assert decision.outcome is Outcome.FORBIDDEN, amount


def test_an_injected_caveat_in_a_chain_denies_everything() -> None:
    _, sub = support((INJECTION,))
    gate = engine('@id("none") forbid(principal, action, resource);')
    for request in (call("refund", order_id="o", amount=1), call("lookup_order", order_id="o")):
        decision = gate.decide(sub, request, now=NOW)
        assert decision.outcome is Outcome.CAVEAT_INVALID
    assert gate.visible_tools(sub) == frozenset()


# -- gate 1 ----------------------------------------------------------------------------------


def test_visible_tools_hide_what_no_permit_can_allow() -> None:
    # a caveat for refunds only: `context.args.amount <= 100` alone errors at every lookup,
    # which hides lookup_order too (review 65g, gates 1)
    member, sub = support(('action != Action::"invoke:refund" || context.args.amount <= 100',))
    gate = engine()
    assert gate.visible_tools(member) == {"lookup_order", "refund"}  # no export: no dpo role
    assert gate.visible_tools(sub) == {"lookup_order"}  # read only: refund needs write
    capped = engine(POLICIES + '@id("deny-all") forbid(principal, action, resource);')
    assert capped.visible_tools(member) == frozenset()


TAGS = st.sampled_from(["read", "write", "admin"])


@settings(max_examples=40, deadline=None)
@given(
    permits=st.dictionaries(st.sampled_from(sorted(TOOLS)), TAGS, max_size=3),
    forbids=st.lists(st.sampled_from(sorted(TOOLS)), max_size=2),
)
def test_a_tool_with_no_applicable_permit_is_never_listed(
    permits: dict[str, str], forbids: list[str]
) -> None:
    member, _ = support()
    policies = "".join(
        f'@id("p-{tool}") permit(principal, action == Action::"invoke:{tool}", resource)'
        f' when {{ {HOLDS}("{tag}") }};\n'
        for tool, tag in permits.items()
    ) + "".join(
        f'@id("f-{tool}") forbid(principal, action == Action::"invoke:{tool}", resource);\n'
        for tool in sorted(set(forbids))
    )
    visible = engine(policies).visible_tools(member)
    held = {"read", "write"}
    expected = {t for t, tag in permits.items() if tag in held and t not in forbids}
    assert visible == expected


def test_oversized_or_non_object_arguments_deny() -> None:
    member, _ = support()
    gate = engine('@id("all") permit(principal, action in Action::"invoke", resource);')
    huge = {"order_id": "o" * (1 << 20), "amount": 1}
    for arguments in (huge, [("order_id", "o"), ("amount", 1)], "x"):
        decision = gate.decide(member, ToolCall("refund", arguments), now=NOW)  # type: ignore[arg-type]
        assert decision.outcome is Outcome.ARGUMENTS


def test_a_bounded_cache_keeps_deciding_right() -> None:
    member, sub = support()
    gate = PolicyEngine(compile_policies(POLICIES, "", TOOLS), cache_size=1)
    request = call("refund", order_id="o", amount=20)
    for _ in range(3):  # each chain evicts the other
        assert gate.decide(member, request, now=NOW).allowed
        assert not gate.decide(sub, request, now=NOW).allowed
        assert gate.visible_tools(sub) == {"lookup_order"}


def test_an_erring_caveat_is_named_when_caveats_outnumber_the_bundles_policies() -> None:
    """The bundle has one policy; the chain carries three caveats, the third erring. Cedar
    numbers the set's policies by position (the caveats follow the bundle's), and the decision
    names the caveat by its id, not a position."""
    caveats = ('context.args.order_id != "x"', "true", 'principal.getTag("orders.no") == "1"')
    world = make_world(sub_caveats=caveats)
    sub = world.credential(world.sub_chain, world.sub)
    one = '@id("lookup") permit(principal, action == Action::"invoke:lookup_order", resource);'
    decision = engine(one).decide(sub, call("lookup_order", order_id="o1"), now=NOW)
    assert decision.outcome is Outcome.EVALUATION_ERROR
    assert decision.policies == ("lookup",)
    assert decision.errors == ("policy caveat:1:2 could not be evaluated",)
    forbidden = engine(one).decide(sub, call("lookup_order", order_id="x"), now=NOW)
    assert not forbidden.allowed
    assert "caveat:1:0" in forbidden.policies


@pytest.mark.parametrize(("base", "added"), [(3, 2), (2, 2), (1, 3), (2, 5), (0, 2), (4, 1)])
def test_fragment_ids_are_the_ids_cedarpy_gives_an_added_fragment(base: int, added: int) -> None:
    """`fragment_ids` states how cedarpy's `with_added_str` numbers a fragment's policies (the
    engine names an erring caveat by it): read back from the merged set's policy nodes."""
    allow = "permit(principal, action, resource);"
    merged = cedarpy.PolicySet.from_str("\n".join([allow] * base)).with_added_str(
        "\n".join(
            f'@id("c{k}") forbid(principal, action, resource) when {{ context.x{k} == 1 }};'
            for k in range(added)
        )
    )
    assigned = {
        node.annotations["id"]: cedar_id
        for cedar_id, node in merged.to_pst().static_policies.items()
        if "id" in node.annotations
    }
    assert [assigned[f"c{k}"] for k in range(added)] == fragment_ids(base, added)
