"""Review 35d, verifier: the public `troth.Verifier` used as a security engineer would."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

import troth
from troth.clock import FixedClock


@dataclass
class Members:
    """acme's hub and an agents node whose customer acme enrolled (the agents node holds
    acme's feed as of the enrollment)."""

    hub: troth.Node
    agents: troth.Node
    acme: troth.Authority
    customer: troth.Identity
    member: troth.Credential


@pytest.fixture
def members(clock: FixedClock) -> Iterator[Members]:
    hub = troth.Node.open("acme", clock=clock)
    agents = troth.Node.open("agents", clock=clock)
    acme = hub.create_authority()
    customer = agents.identities.create("customer")
    member = agents.enroll(acme.ticket({"orders.access": "read"}), identity=customer)
    yield Members(hub, agents, acme, customer, member)
    agents.close()
    hub.close()


def test_a_revocation_in_any_feed_source_counts(members: Members, clock: FixedClock) -> None:
    """Verifier 1: `feeds=[node, authority]` (the node's copy first, the authority itself as
    well) used the node's copy, taken at enrollment and still within the staleness limit,
    and never looked at the authority's own feed: a credential the authority had just
    revoked verified, though the verifier was handed the feed that revokes it. The newest
    feed among the sources is the one to check against. Was a strict xfail until `Verifier` took
    the newest feed its sources hold."""
    clock.advance(10)
    members.acme.revoke(members.member, reason="left the team")
    both: list[troth.Node | troth.Authority] = [members.agents, members.acme]
    for feeds in (both, both[::-1]):
        verifier = troth.Verifier(trust=[members.acme.identifier], feeds=feeds, clock=clock)
        with pytest.raises(troth.CredentialError) as refused:
            verifier.verify(members.member, presenter=members.customer)
        assert refused.value.reason is troth.CredentialFailure.REVOKED


def test_a_feed_source_that_is_not_a_node_nor_an_authority_is_refused_at_once(
    members: Members, clock: FixedClock
) -> None:
    """Verifier 2: `feeds="agents"` (the node's name, where the node was meant) made a
    verifier, every verification of which then failed with an AttributeError, no
    `TrothError` and no `reason`: a service catching `CredentialError` to refuse a caller
    crashed instead, at its first request in production rather than at start-up. The
    sources are checked when the verifier is made (TypeError naming what was given). Was a
    strict xfail until `Verifier` checked its sources."""
    for wrong in ("agents", ["agents"], [members.agents, members.acme.identifier]):
        with pytest.raises(TypeError, match="feeds must be a Node or an Authority"):
            troth.Verifier(trust=[members.acme.identifier], feeds=wrong)  # type: ignore[arg-type]
