"""The tool gate: gate 1 lists, gate 2 decides every call with current credentials (a
revocation mid-task denies the next call), denials never run the tool, every decision is
recorded, an allowed call gets its lease."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest

from tests.support.gates import T, export_customers, lookup_order, make_world, refund
from troth.clock import FixedClock
from troth.credentials import CredentialChain, RevocationKind
from troth.gates import (
    DecisionRecord,
    ListRecorder,
    Outcome,
    PresentedChain,
    Tool,
    ToolGate,
)


def gate_for(
    world: Any, *tools: Tool, recorder: ListRecorder | None = None, leases: Any = None
) -> ToolGate:
    store = world.store(world.bundle())
    declared = tools or tuple(
        Tool.from_function(f) for f in (lookup_order, refund, export_customers)
    )
    return ToolGate(world.point(store, recorder), declared, clock=FixedClock(T + 10), leases=leases)


def test_gate_one_lists_only_what_the_caller_could_call() -> None:
    world = make_world()
    gate = gate_for(world)
    member = world.credential(world.support_chain, world.support)
    sub = world.credential(world.sub_chain, world.sub)
    assert [t.name for t in gate.available_tools(member)] == ["lookup_order", "refund"]
    assert [t.name for t in gate.available_tools(sub)] == ["lookup_order"]
    listed = gate.available_tools(member)[1].to_json()
    assert listed["description"] == "Refund part of an order."
    assert listed["inputSchema"]["required"] == ["order_id", "amount"]


def test_invoke_runs_allowed_calls_only() -> None:
    world = make_world()
    ran: list[str] = []

    def counted(order_id: str, amount: int) -> str:
        ran.append(order_id)
        return f"refunded {amount}"

    gate = gate_for(world, Tool.from_function(counted, name="refund"))
    member = world.credential(world.support_chain, world.support)
    result = gate.invoke(member, "refund", {"order_id": "o1", "amount": 20})
    assert (result.allowed, result.value) == (True, "refunded 20")
    denied = gate.invoke(member, "refund", {"order_id": "o2", "amount": 5000})
    assert (denied.allowed, denied.value) == (False, None)
    assert denied.decision.reason == "denied by policy refund-cap"
    assert ran == ["o1"]


def test_a_hidden_tool_called_by_name_is_denied() -> None:
    world = make_world()
    recorder = ListRecorder()
    gate = gate_for(world, recorder=recorder)
    member = world.credential(world.support_chain, world.support)
    sub = world.credential(world.sub_chain, world.sub)
    assert "export_customers" not in [t.name for t in gate.available_tools(member)]
    # told as a tool the bundle does not declare (review 47h, gates 1), recorded as it is
    told = gate.invoke(member, "export_customers", {"fmt": "csv"}).decision
    assert told.outcome is Outcome.UNKNOWN_REQUEST
    assert recorder.records[-1].decision.outcome is Outcome.NO_PERMIT
    assert not gate.invoke(sub, "refund", {"order_id": "o", "amount": 1}).allowed


@pytest.mark.parametrize("fresh_source", [True, False])
def test_a_revocation_between_two_calls_denies_the_second(fresh_source: bool) -> None:
    world = make_world()
    gate = gate_for(world)
    caller: Any = (
        PresentedChain(world.sub_chain, world.sub.identifier, world.verifier, world.held_feed)
        if fresh_source
        else world.credential(world.sub_chain, world.sub)
    )
    assert gate.invoke(caller, "lookup_order", {"order_id": "o1"}).allowed
    link = CredentialChain.decode(world.sub_chain).credentials[-1].hash
    world.revoke(RevocationKind.CREDENTIAL, link, now=T + 5)  # the customer revokes mid-task
    second = gate.invoke(caller, "lookup_order", {"order_id": "o1"})
    assert (second.allowed, second.decision.outcome) == (False, Outcome.CREDENTIAL)
    assert second.decision.reason == "denied: the caller's credential is revoked"
    assert gate.available_tools(caller) == []


def test_an_expired_credential_is_denied() -> None:
    world = make_world()
    sub = world.credential(world.sub_chain, world.sub)  # delegated for 7 days
    world.refresh_feed(T + 8 * 86_400)
    store = world.store(world.bundle(now=T + 8 * 86_400 - 10), now=T + 8 * 86_400)
    gate = ToolGate(
        world.point(store), [Tool.from_function(lookup_order)], clock=FixedClock(T + 8 * 86_400)
    )
    assert (
        gate.invoke(sub, "lookup_order", {"order_id": "o"}).decision.outcome is Outcome.CREDENTIAL
    )


def test_every_decision_is_recorded() -> None:
    world = make_world()
    recorder = ListRecorder()
    gate = gate_for(world, recorder=recorder)
    member = world.credential(world.support_chain, world.support)
    gate.invoke(member, "refund", {"order_id": "o1", "amount": 20})
    gate.invoke(member, "refund", {"order_id": "o1", "amount": 5000})
    gate.invoke(member, "nope", {})
    gate.available_tools(member)  # previews are not decisions
    assert [(r.request.tool, r.decision.allowed) for r in recorder.records] == [  # type: ignore[union-attr]
        ("refund", True),
        ("refund", False),
        ("nope", False),
    ]
    assert all(r.credential == member and r.at == T + 10 for r in recorder.records)


class SecretLeases:
    """A LeaseProvider stand-in: hands out a secret per allowed call and takes it back."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def lease(self, record: DecisionRecord) -> AbstractContextManager[object | None]:
        @contextmanager
        def scoped() -> Iterator[object | None]:
            self.events.append(f"open {record.request.tool}")  # type: ignore[union-attr]
            yield "secret-for-this-call"
            self.events.append("closed")

        return scoped()


def test_an_allowed_call_gets_its_lease_and_a_denied_call_none() -> None:
    world = make_world()
    leases = SecretLeases()

    def refund_with_lease(order_id: str, amount: int, *, lease: object = None) -> str:
        return f"{amount} with {lease}"

    gate = gate_for(world, Tool.from_function(refund_with_lease, name="refund"), leases=leases)
    member = world.credential(world.support_chain, world.support)
    assert gate.invoke(member, "refund", {"order_id": "o", "amount": 20}).value == (
        "20 with secret-for-this-call"
    )
    assert not gate.invoke(member, "refund", {"order_id": "o", "amount": 5000}).allowed
    assert leases.events == ["open refund", "closed"]


def test_a_tool_whose_schema_differs_from_the_bundles_is_denied() -> None:
    world = make_world()

    def refund(order_id: str, amount: int, reason: str) -> str:  # one argument more
        return "refunded"

    recorder = ListRecorder()
    tools = (Tool.from_function(refund), Tool.from_function(lookup_order))
    gate = gate_for(world, *tools, recorder=recorder)
    member = world.credential(world.support_chain, world.support)
    assert [t.name for t in gate.available_tools(member)] == ["lookup_order"]
    decision = gate.invoke(member, "refund", {"order_id": "o", "amount": 1, "reason": "x"}).decision
    assert decision.outcome is Outcome.UNKNOWN_REQUEST  # hidden: told as undeclared (47h)
    assert recorder.records[-1].decision.outcome is Outcome.SCHEMA_MISMATCH
    undeclared = gate.invoke(member, "export_customers", {"fmt": "csv"}).decision
    assert undeclared.outcome is Outcome.UNKNOWN_REQUEST


def test_tools_refuse_what_no_bundle_can_type() -> None:
    def floats(x: float) -> None: ...

    with pytest.raises(Exception, match="float"):
        Tool.from_function(floats)
    with pytest.raises(ValueError, match="declared twice"):
        ToolGate(
            gate_for(make_world()).point,
            [Tool.from_function(lookup_order), Tool.from_function(lookup_order)],
        )
