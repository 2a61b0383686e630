"""Cedar's answer read once (troth.gates.cedar_call): calling cedarpy's native function
directly answers exactly as its public wrapper does, for every kind of answer the engine maps
(Allow, a forbid, no permit, an erroring forbid, an erroring caveat, a request Cedar cannot
build); an answer of an unknown shape denies."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.gates import POLICIES, TOOLS, T, make_world
from troth.gates import (
    Outcome,
    PolicyDecision,
    PolicyEngine,
    ToolCall,
    cedar_call,
    compile_policies,
)

NOW = T + 10
ERRING = POLICIES + (
    '@id("overflow") forbid(principal, action == Action::"invoke:refund", resource)\n'
    "  when { context.args.amount * 10000000000000000 > 500000000000000000 };"
)
CASES: list[tuple[str, dict[str, Any], Outcome]] = [
    ("refund", {"order_id": "o1", "amount": 20}, Outcome.ALLOWED),
    ("refund", {"order_id": "o1", "amount": 60}, Outcome.FORBIDDEN),  # overflow's forbid
    ("refund", {"order_id": "o1", "amount": 999}, Outcome.EVALUATION_ERROR),
    ("export_customers", {"fmt": "csv"}, Outcome.NO_PERMIT),
    ("refund", {"order_id": "o1", "amount": "20"}, Outcome.ARGUMENTS),  # Cedar cannot build it
]


def _decide_both(
    monkeypatch: pytest.MonkeyPatch, tool: str, args: dict[str, Any], *, caveat: str = ""
) -> tuple[PolicyDecision, PolicyDecision]:
    world = make_world(sub_caveats=(caveat,) if caveat else ())
    member = (
        world.credential(world.sub_chain, world.sub)
        if caveat
        else world.credential(world.support_chain, world.support)
    )
    answers = []
    for native in (cedar_call._native, None):
        with monkeypatch.context() as patch:
            patch.setattr(cedar_call, "_native", native)
            engine = PolicyEngine(compile_policies(ERRING, "", TOOLS), revision=7)
            answers.append(engine.decide(member, ToolCall(tool, args), now=NOW))
    return answers[0], answers[1]


def test_this_cedarpy_is_called_directly() -> None:
    assert cedar_call.DIRECT  # cedarpy >= 4.12 (pyproject): else the speed-up is gone


@pytest.mark.parametrize(("tool", "args", "outcome"), CASES)
def test_both_ways_decide_alike(
    monkeypatch: pytest.MonkeyPatch, tool: str, args: dict[str, Any], outcome: Outcome
) -> None:
    direct, wrapped = _decide_both(monkeypatch, tool, args)
    assert direct == wrapped
    assert direct.outcome is outcome


def test_both_ways_name_an_erring_caveat_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    caveat = 'principal.getTag("orders.blocked").contains("no")'
    direct, wrapped = _decide_both(monkeypatch, "lookup_order", {"order_id": "o1"}, caveat=caveat)
    assert direct == wrapped
    assert direct.errors == ("policy caveat:1:0 could not be evaluated",)


@settings(max_examples=25, deadline=None)
@given(amount=st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_both_ways_decide_any_amount_alike(amount: int) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        direct, wrapped = _decide_both(monkeypatch, "refund", {"order_id": "o", "amount": amount})
    assert direct == wrapped


@pytest.mark.parametrize(
    "answer",
    [
        "[]",
        '{"decision":"allow","diagnostics":{"reason":[],"errors":[]}}',
        '{"decision":"Allow"}',
        '{"decision":"Allow","diagnostics":{"reason":[1],"errors":[]}}',
        '{"decision":"Allow","diagnostics":{"reason":["policy0"],"errors":{}}}',
        '{"decision":"Allow","diagnostics":{"reason":["policy0"],"errors":[],'
        '"id_annotations_by_reason":{"policy0":7}}}',
    ],
)
def test_an_answer_of_an_unknown_shape_denies(monkeypatch: pytest.MonkeyPatch, answer: str) -> None:
    world = make_world()
    member = world.credential(world.support_chain, world.support)
    monkeypatch.setattr(cedar_call, "_native", lambda *_: [answer])
    engine = PolicyEngine(compile_policies(POLICIES, "", TOOLS), revision=7)
    decision = engine.decide(member, ToolCall("refund", {"order_id": "o1", "amount": 20}), now=NOW)
    assert (decision.allowed, decision.outcome) == (False, Outcome.EVALUATION_ERROR)
    assert decision.errors == ("the policy engine could not decide",)
