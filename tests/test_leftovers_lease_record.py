"""Gate 3 and the trace: the tool gate records gate 2's decision before it asks the
`LeaseProvider` for the call's secret (a lease step links to that record). When the provider
then refuses (`LeaseDenied`), the call is denied and its tool never runs, but the decision
recorder had only the "allowed" record: the trace showed an allowed call (a `tool_invocation`
record) that did not run, and nothing of the refusal unless the provider was a broker with an
audit sink of its own. A provider that failed otherwise (any other exception) left the same
record, and a `LeaseDenied` carrying an allowed decision was returned as allowed though the
tool did not run.

The tests call the gate with custom providers and a recorder: after the allowed record, the
recorder receives the refusal of the same call (its request, credential and time), a `denial`
in the trace with the provider's reason. They were strict xfails until the gate recorded it
(`DecisionPoint.refuse`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import pytest

from tests.support.gates import POLICIES, TOOLS, GatesWorld, T, make_world, refund
from troth.clock import FixedClock
from troth.gates import (
    DecisionRecord,
    LeaseDenied,
    ListRecorder,
    Outcome,
    PolicyDecision,
    Tool,
    ToolGate,
)
from troth.trace.adapters import decision_content
from troth.trace.record import Kind

SEALED = "denied: no lease of secret payments: the vault is sealed"


class Refusing:
    """A LeaseProvider that refuses every lease with `decision` (or fails with `error`)."""

    def __init__(self, decision: PolicyDecision | None = None, error: Exception | None = None):
        self.decision = decision
        self.error = error

    def lease(self, record: DecisionRecord) -> AbstractContextManager[object | None]:
        if self.error is not None:
            raise self.error
        raise LeaseDenied(self.decision or PolicyDecision.deny(Outcome.LEASE_DENIED, SEALED))


def _gate(provider: Refusing) -> tuple[ToolGate, ListRecorder, list[str], GatesWorld]:
    world = make_world()
    recorder = ListRecorder()
    store = world.store(world.bundle(policies=POLICIES, tools=TOOLS))
    ran: list[str] = []

    def run(order_id: str, amount: int) -> str:
        ran.append(order_id)
        return refund(order_id, amount)

    tool = Tool("refund", TOOLS["refund"], run)
    gate = ToolGate(world.point(store, recorder), [tool], clock=FixedClock(T + 10), leases=provider)
    return gate, recorder, ran, world


def test_a_refused_lease_is_recorded_as_the_calls_denial() -> None:
    gate, recorder, ran, world = _gate(Refusing())
    caller = world.credential(world.support_chain, world.support)
    result = gate.invoke(caller, "refund", {"order_id": "o1", "amount": 20})
    assert (result.allowed, result.decision.reason, ran) == (False, SEALED, [])
    allowed, refused = recorder.records
    assert allowed.decision.allowed
    assert not refused.decision.allowed
    assert refused.decision.outcome is Outcome.LEASE_DENIED
    assert refused.decision.reason == SEALED
    assert (refused.at, refused.request, refused.credential, refused.presenter) == (
        allowed.at,
        allowed.request,
        allowed.credential,
        allowed.presenter,
    )
    agent = world.support.identifier
    kinds = [decision_content(r, agent)[0].kind for r in recorder.records]
    assert kinds == [Kind.TOOL_INVOCATION, Kind.DENIAL]


def test_a_refusal_carrying_an_allowed_decision_is_still_a_denial() -> None:
    """A provider's LeaseDenied whose decision says allowed: the call is denied (LEASE_DENIED)
    and recorded so; the tool never runs."""
    confused = PolicyDecision(True, Outcome.ALLOWED, "allowed")
    gate, recorder, ran, world = _gate(Refusing(confused))
    caller = world.credential(world.support_chain, world.support)
    result = gate.invoke(caller, "refund", {"order_id": "o1", "amount": 20})
    assert (result.allowed, result.decision.outcome, ran) == (False, Outcome.LEASE_DENIED, [])
    assert [r.decision.allowed for r in recorder.records] == [True, False]
    assert recorder.records[-1].decision == result.decision


def test_a_failing_lease_provider_is_recorded_as_the_calls_denial() -> None:
    """A provider that raises something else than LeaseDenied: the error propagates (the tool
    never runs) after the call's denial is recorded, naming the failure's type only."""
    gate, recorder, ran, world = _gate(Refusing(error=ConnectionError("secret-ish detail")))
    caller = world.credential(world.support_chain, world.support)
    with pytest.raises(ConnectionError):
        gate.invoke(caller, "refund", {"order_id": "o1", "amount": 20})
    assert ran == []
    assert [r.decision.allowed for r in recorder.records] == [True, False]
    refused = recorder.records[-1].decision
    assert refused.outcome is Outcome.LEASE_DENIED
    assert refused.reason == "denied: the lease provider failed (ConnectionError)"
