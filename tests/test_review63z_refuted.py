"""Review 63z, verifier: attacks on the public `troth.Verifier` that did not work, each a
real attempt that fails if the defence it names breaks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

import troth
from troth.clock import FixedClock

MEMBER = {"orders.access": "read"}


@dataclass
class Enrolled:
    hub: troth.Node
    agents: troth.Node
    acme: troth.Authority
    her: troth.Identity
    member: troth.Credential


@pytest.fixture
def enrolled(clock: FixedClock) -> Iterator[Enrolled]:
    with (
        troth.Node.open("acme", clock=clock) as hub,
        troth.Node.open("agents", clock=clock) as agents,
    ):
        acme = hub.create_authority()
        her = agents.identities.create("customer")
        member = agents.enroll(acme.ticket(MEMBER), identity=her)
        yield Enrolled(hub, agents, acme, her, member)


def test_an_older_copy_a_node_holds_does_not_hide_the_authoritys_revocation(
    enrolled: Enrolled, clock: FixedClock
) -> None:
    """The agents node holds acme's feed from before the revocation (fresh: no sync), listed
    first; the newest copy among the sources counts (`newest_copy`)."""
    clock.advance(5)
    enrolled.acme.revoke(enrolled.member, reason="left")
    verifier = troth.Verifier(
        trust=[enrolled.acme.identifier], feeds=[enrolled.agents, enrolled.acme], clock=clock
    )
    with pytest.raises(troth.CredentialError) as refused:
        verifier.verify(enrolled.member, presenter=enrolled.her)
    assert refused.value.reason is troth.CredentialFailure.REVOKED


def test_a_cached_verification_does_not_outlive_a_revocation(
    enrolled: Enrolled, clock: FixedClock
) -> None:
    """Only the byte checks are cached: the revocation, read from the feed, counts at the
    next call of the same verifier (`ChainVerifier._check_state` every call)."""
    verifier = troth.Verifier(trust=[enrolled.acme.identifier], feeds=enrolled.acme, clock=clock)
    assert verifier.verify(enrolled.member, presenter=enrolled.her).actor == enrolled.her.identifier
    clock.advance(5)
    enrolled.acme.revoke(enrolled.member, reason="left")
    with pytest.raises(troth.CredentialError) as refused:
        verifier.verify(enrolled.member, presenter=enrolled.her)
    assert refused.value.reason is troth.CredentialFailure.REVOKED


def test_another_members_current_history_is_no_presenter_of_her_chain(
    enrolled: Enrolled, clock: FixedClock
) -> None:
    """A valid, current history of someone else (an Identity made properly) presenting her
    chain: the chain's last subject is checked against it (WRONG_SUBJECT)."""
    other = enrolled.agents.identities.create("other")
    verifier = troth.Verifier(trust=[enrolled.acme.identifier], feeds=enrolled.acme, clock=clock)
    with pytest.raises(troth.CredentialError) as refused:
        verifier.verify(enrolled.member, presenter=other)
    assert refused.value.reason is troth.CredentialFailure.WRONG_SUBJECT
