"""Review 57a: attacks on the gates' control plane and per-call decision that did not work.
Each is a real attempt; each test fails if the defence it meets breaks."""

from __future__ import annotations

import decimal
from typing import Any

import pytest

from tests.support.gates import GatesWorld, T, make_world
from troth import limits
from troth.clock import FixedClock
from troth.credentials import RevocationKind
from troth.errors import PolicyError, PolicyFailure
from troth.gates import BundleStore, ListRecorder, Outcome, Tool, ToolCall, ToolGate, cedar_call
from troth.gates import bundles as bundle_module
from troth.gates.bundles import BundleBody


@pytest.fixture
def world() -> GatesWorld:
    return make_world()


def _decide(world: GatesWorld, tool: str, arguments: Any) -> Any:
    member = world.credential(world.support_chain, world.support)
    point = world.point(world.store(world.bundle()))
    return point.decide(member, ToolCall(tool, arguments), now=T + 10)


class _Key(str):
    pass


@pytest.mark.parametrize(
    "amount",
    [
        5.0,
        float("nan"),
        2**60,
        -(2**63),
        True,
        "5",
        decimal.Decimal(5),
        {"__expr": "5"},
        {"__extn": {"fn": "decimal", "arg": "5.0"}},
        [5],
    ],
    ids=repr,
)
def test_a_hostile_amount_is_denied_as_arguments(world: GatesWorld, amount: Any) -> None:
    """A float, NaN, an integer past I-JSON or i64, a bool, a string, a Decimal, Cedar's JSON
    escapes (`__expr`, `__extn`) or a list where the refund's `amount` is an integer: never
    judged as an amount the cap allows."""
    decision = _decide(world, "refund", {"order_id": "1", "amount": amount})
    assert (decision.allowed, decision.outcome) == (False, Outcome.ARGUMENTS)


@pytest.mark.parametrize(
    "arguments",
    [
        {"order_id": "\ud800", "amount": 5},  # a lone surrogate
        {"order_id": "1\x00", "amount": 5},  # a NUL ends a C string
        {_Key("order_id"): "1", "amount": 5},  # a str subclass as a key
        {"order_id": "1", "amount": 5, "extra": 1},  # a property the schema lacks
        {"order_id": "1"},  # a required one missing
        {"order_id": {"__entity": {"type": "Agent", "id": "x"}}, "amount": 5},
    ],
    ids=repr,
)
def test_hostile_argument_objects_are_denied(world: GatesWorld, arguments: Any) -> None:
    decision = _decide(world, "refund", arguments)
    assert (decision.allowed, decision.outcome) == (False, Outcome.ARGUMENTS)


@pytest.mark.parametrize("name", ["refund ", " refund", "Refund", "refund\n", "r\u0435fund"])
def test_a_tool_name_game_is_no_declared_tool(world: GatesWorld, name: str) -> None:
    """Whitespace, case and a Cyrillic e (U+0435) do not reach the declared `refund`."""
    decision = _decide(world, name, {"order_id": "1", "amount": 5})
    assert (decision.allowed, decision.outcome) == (False, Outcome.UNKNOWN_REQUEST)


def test_a_hidden_tool_called_by_name_is_denied_and_never_runs(world: GatesWorld) -> None:
    """The sub-agent holds read access only: `refund` is hidden from its tools/list, and called
    by name it is denied as an undeclared tool; the tool does not run."""
    ran: list[str] = []

    def refund(order_id: str, amount: int) -> str:
        ran.append(order_id)
        return "refunded"

    recorder = ListRecorder()
    gate = ToolGate(
        world.point(world.store(world.bundle()), recorder),
        [Tool.from_function(refund)],
        clock=FixedClock(T + 10),
    )
    sub = world.credential(world.sub_chain, world.sub)
    assert gate.available_tools(sub) == []
    result = gate.invoke(sub, "refund", {"order_id": "1", "amount": 5})
    assert not result.allowed
    assert result.decision.outcome is Outcome.UNKNOWN_REQUEST
    assert recorder.records[-1].decision.outcome is Outcome.NO_PERMIT  # the real decision
    assert ran == []


def test_an_answer_without_its_errors_list_or_a_crash_never_allows(
    world: GatesWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cedar's answer read as an Allow whose `errors` is not a list is denied (UNREADABLE); a
    native call that raises stops the call (the tool gate runs nothing)."""
    member = world.credential(world.support_chain, world.support)
    point = world.point(world.store(world.bundle()))
    call = ToolCall("refund", {"order_id": "1", "amount": 5})
    assert point.decide(member, call, now=T + 10).allowed
    if cedar_call._native is None:
        pytest.skip("this cedarpy has no native batch function")
    odd = '{"decision":"Allow","diagnostics":{"reason":["policy1"],"errors":null}}'
    monkeypatch.setattr(cedar_call, "_native", lambda *args: [odd])
    fresh = world.point(world.store(world.bundle(revision=2)))
    assert not fresh.decide(member, call, now=T + 10).allowed

    def crash(*args: Any) -> list[str]:
        raise RuntimeError("cedar panicked")

    monkeypatch.setattr(cedar_call, "_native", crash)
    with pytest.raises(RuntimeError):
        world.point(world.store(world.bundle(revision=3))).decide(member, call, now=T + 10)


# -- the control plane ------------------------------------------------------------------------


def test_an_older_revision_is_a_rollback(world: GatesWorld) -> None:
    store = world.store(world.bundle(revision=2))
    with pytest.raises(PolicyError) as refused:
        store.accept(world.bundle(revision=1), feeds=world.feeds(), now=T + 6)
    assert refused.value.reason is PolicyFailure.ROLLBACK


def test_a_bundle_of_an_authority_the_node_does_not_trust_is_refused(world: GatesWorld) -> None:
    """A genuine bundle of another authority, replayed to a node trusting only this one."""
    other = make_world()
    with pytest.raises(PolicyError) as refused:
        world.store(other.bundle())
    assert refused.value.reason is PolicyFailure.UNTRUSTED_AUTHORITY


def test_a_revoked_policy_admin_signs_nothing_and_its_bundle_stops(world: GatesWorld) -> None:
    admins = world.bundle(by_admin=True, ttl=3600)
    store = world.store(admins)
    member = world.credential(world.support_chain, world.support)
    call = ToolCall("lookup_order", {"order_id": "1"})
    assert world.point(store).decide(member, call, now=T + 10).allowed
    world.revoke(RevocationKind.IDENTITY, world.admin.identifier.digest, now=T + 10)
    denied = world.point(store).decide(member, call, now=T + 11)
    assert (denied.allowed, denied.outcome) == (False, Outcome.NOT_IN_FORCE)
    with pytest.raises(PolicyError) as refused:
        BundleStore(world.verifier).accept(admins, feeds=world.feeds(), now=T + 11)
    assert refused.value.reason in (PolicyFailure.SIGNER_REVOKED, PolicyFailure.SIGNER_INVALID)


def test_a_signed_bundle_whose_policies_do_not_validate_is_refused(world: GatesWorld) -> None:
    """Signed by the authority itself, bypassing `create_bundle`'s compilation: a permit on an
    attribute the schema lacks is refused at verification."""
    authority = world.authority
    body = BundleBody(
        authority.identifier,
        authority.identifier,
        1,
        T,
        T + 3600,
        '@id("x") permit(principal, action, resource) when { principal.no_such > 1 };',
        "",
        {},
        {},
    ).encode()
    signer = authority.signer
    data = bundle_module._Signed(
        body, signer.sign(body), signer.attestation, signer.identity.history, None
    ).encode()
    with pytest.raises(PolicyError) as refused:
        world.store(data)
    assert refused.value.reason is PolicyFailure.POLICIES_INVALID


def test_a_bundle_past_the_size_limit_is_refused_before_anything(world: GatesWorld) -> None:
    huge = b"\x00" * (limits.MAX_POLICY_BUNDLE_BYTES + 1)
    with pytest.raises(PolicyError) as refused:
        BundleStore(world.verifier).accept(huge, feeds=world.feeds(), now=T + 5)
    assert refused.value.reason is PolicyFailure.OVER_LIMIT
