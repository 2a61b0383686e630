"""Rotations against what a gate holds (docs/policy.md, "Decisions"): a held
`VerifiedCredential` whose issuer or presenter rotated is denied at the next decision; what
did not rotate keeps working, and a delegation made again under the new history is allowed."""

from __future__ import annotations

import pytest

from tests.support.gates import GatesWorld, T, make_world, rotate, superseding
from troth.credentials import Attributes, CredentialChain, delegate
from troth.errors import CredentialError
from troth.gates import Outcome, ToolCall

DAY = 86_400
LOOKUP = ToolCall("lookup_order", {"order_id": "4471"})


@pytest.fixture
def world() -> GatesWorld:
    return make_world()


# -- held credentials -----------------------------------------------------------------------------


def test_a_held_credential_whose_presenter_rotated_is_denied(world: GatesWorld) -> None:
    point = world.point(world.store(world.bundle()))
    sub = world.verifier.verify(
        world.sub_chain, presenter=world.sub.identity, feeds=world.feeds(), now=T + 10
    )
    assert sub.presenter is world.sub.identity
    assert point.decide(sub, LOOKUP, now=T + 20).allowed
    history, _ = rotate(world, world.sub, T + 30)
    world.feed = superseding(world.authority, history, world.authority, T + 40)
    decision = point.decide(sub, LOOKUP, now=T + 45)
    assert (decision.allowed, decision.outcome) == (False, Outcome.CREDENTIAL)
    assert "superseded" in decision.reason


def test_a_held_credential_stays_allowed_when_an_identity_outside_its_chain_rotates(
    world: GatesWorld,
) -> None:
    point = world.point(world.store(world.bundle()))
    sub = world.credential(world.sub_chain, world.sub)
    history, _ = rotate(world, world.admin, T + 30)
    world.feed = superseding(world.authority, history, world.authority, T + 40)
    assert point.decide(sub, LOOKUP, now=T + 45).allowed


def test_a_delegation_made_again_under_the_rotated_history_is_allowed(world: GatesWorld) -> None:
    point = world.point(world.store(world.bundle()))
    old = world.credential(world.sub_chain, world.sub)
    history, support = rotate(world, world.support, T + 30)
    world.feed = superseding(world.authority, history, world.authority, T + 40)
    again = delegate(
        support.signer,
        CredentialChain.decode(world.support_chain),
        subject=world.sub.identifier,
        attributes=Attributes({"orders.access": "read"}),
        now=T + 41,
        ttl=DAY,
        purpose="answer complaint 123",
    )
    fresh = world.credential(again.encode(), world.sub, now=T + 42)
    assert point.decide(fresh, LOOKUP, now=T + 45).allowed
    assert not point.decide(old, LOOKUP, now=T + 45).allowed
    with pytest.raises(CredentialError):
        world.credential(world.sub_chain, world.sub, now=T + 45)
