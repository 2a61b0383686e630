"""Review 63z, verifier: the public `troth.Verifier` and what its presenter means.

1. `Verifier.verify(chain, presenter=<Identity>)` reduced the `Identity` to its identifier
   (`_presenter`), so the presenter's OWN history was never checked against the authority's
   feed, unlike the node's channels and admission, which pass the verified history. A member
   who rotated after her key was stolen (her authority's feed records the supersession) was
   still verified when a thief presented her chain with her OLD history (the `Identity` the
   caller built from what the thief showed, or one it kept from before the rotation): the
   caller then checks the thief's signatures against that stale history's key. Now an
   `Identity` presenter's history is verified and judged against the feed (SUPERSEDED); a
   history that does not verify, or is another identity's than the `Identity`'s identifier,
   is WRONG_SUBJECT. An identifier (or its text) still means only "the caller vouches the
   presenter is this identity": no history is checked (docs/python.md, "Verifiers").
2. A Verifier fed by a node asked the node for its feed at the verifier's time, and the node
   synced (stored) its copy at that time: a verifier whose clock read a day ahead left the
   node holding a copy issued a day in the future, against which its syncs at its own time
   then failed, so a revocation the authority made meanwhile was refused only with NO_FEED
   (a node with no usable feed of its authority). A node is now asked no later than its own
   clock (`_held_at`).
3. A verifier whose clock was set back before the authority's key was valid (or behind the
   authority's host by more than the skew), fed by the `Authority`, got an IdentityError out
   of `verify` (the authority's feed view signs its own history's publication), which
   promises a CredentialError: now NO_FEED (`_held_copy`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest

import troth
from troth.clock import FixedClock

MEMBER = {"orders.access": "read"}


@dataclass
class Rotated:
    """acme's hub and an agents node: `old` is the member's identity before her (announced)
    rotation, `new` after it; `member` her credential."""

    hub: troth.Node
    agents: troth.Node
    acme: troth.Authority
    old: troth.Identity
    new: troth.Identity
    member: troth.Credential
    other: troth.Identity


@pytest.fixture
def rotated(clock: FixedClock) -> Iterator[Rotated]:
    with (
        troth.Node.open("acme", clock=clock) as hub,
        troth.Node.open("agents", clock=clock) as agents,
    ):
        acme = hub.create_authority()
        old = agents.identities.create("customer")
        other = agents.identities.create("other")
        member = agents.enroll(acme.ticket(MEMBER), identity=old)
        clock.advance(10)
        new = agents.identities.rotate(old, compromised=True)  # acme hears of it (same machine)
        yield Rotated(hub, agents, acme, old, new, member, other)


def _verifier(case: Rotated, clock: FixedClock, feeds: object = None) -> troth.Verifier:
    return troth.Verifier(
        trust=[case.acme.identifier],
        feeds=case.acme if feeds is None else feeds,  # type: ignore[arg-type]
        clock=clock,
    )


@pytest.mark.parametrize("source", ["authority", "node", "both"])
def test_verifier_1_a_stale_presenter_history_is_superseded(
    rotated: Rotated, clock: FixedClock, source: str
) -> None:
    """The thief's presentation (her chain, her old history) is refused, whichever source the
    feed comes from."""
    feeds = {
        "authority": rotated.acme,
        "node": rotated.agents,
        "both": [rotated.agents, rotated.acme],
    }[source]
    verifier = _verifier(rotated, clock, feeds)
    assert (rotated.old.changes, rotated.new.changes) == (1, 3)
    with pytest.raises(troth.CredentialError) as refused:
        verifier.verify(rotated.member, presenter=rotated.old)
    assert refused.value.reason is troth.CredentialFailure.SUPERSEDED


def test_verifier_1_the_honest_presenter_forms_keep_working(
    rotated: Rotated, clock: FixedClock
) -> None:
    verifier = _verifier(rotated, clock)
    her = rotated.new.identifier
    assert verifier.verify(rotated.member, presenter=rotated.new).actor == her
    assert verifier.verify(rotated.member, presenter=her).actor == her
    assert verifier.verify(rotated.member, presenter=str(her)).actor == her
    # the current identity again, after a stale one was refused (nothing cached wrongly)
    with pytest.raises(troth.CredentialError):
        verifier.verify(rotated.member, presenter=rotated.old)
    assert verifier.verify(rotated.member, presenter=rotated.new).actor == her


def test_verifier_1_an_identity_carrying_another_history_is_no_presenter(
    rotated: Rotated, clock: FixedClock
) -> None:
    """An `Identity` whose history is another identity's (or none at all) names the member
    only by its identifier field: refused, not taken as her identifier."""
    verifier = _verifier(rotated, clock)
    for history in (rotated.other.history, b"\x00garbage", b""):
        forged = replace(rotated.new, history=history)
        with pytest.raises(troth.CredentialError) as refused:
            verifier.verify(rotated.member, presenter=forged)
        assert refused.value.reason is troth.CredentialFailure.WRONG_SUBJECT


def test_verifier_2_a_verifier_ahead_of_the_node_does_not_date_its_feed(clock: FixedClock) -> None:
    """A Verifier whose clock reads a day ahead (asking what a chain would be worth then), fed
    by a node, made the node sync the authority's feed at that time: the node stored a copy
    issued a day in the future. Back at the node's time, the authority revoked the member's
    credential, and a Verifier fed by the node refused it only with NO_FEED (the node's sync
    of the revocation failed against its future-dated copy)."""
    with (
        troth.Node.open("acme", clock=clock) as hub,
        troth.Node.open("agents", clock=clock) as agents,
    ):
        acme = hub.create_authority()
        her = agents.identities.create("customer")
        member = agents.enroll(acme.ticket(MEMBER), identity=her)
        ahead = troth.Verifier(
            trust=[acme.identifier], feeds=agents, clock=FixedClock(clock.now() + 86_400)
        )
        with pytest.raises(troth.CredentialError):  # expired by then, whatever the feed
            ahead.verify(member, presenter=her.identifier)
        clock.advance(400)  # past half the staleness limit: the node syncs again
        acme.revoke(member, reason="left")
        verifier = troth.Verifier(trust=[acme.identifier], feeds=agents, clock=clock)
        with pytest.raises(troth.CredentialError) as refused:
            verifier.verify(member, presenter=her.identifier)
        assert refused.value.reason is troth.CredentialFailure.REVOKED


@pytest.mark.parametrize("source", ["authority", "node"])
def test_verifier_3_a_clock_set_back_is_refused_with_a_credential_error(
    clock: FixedClock, source: str
) -> None:
    """A verifier asked (its clock set back, or behind the authority's host) at a time before
    the authority's key was valid: the Authority source's feed view failed to sign its own
    history's publication and an IdentityError escaped `verify`, which promises a
    CredentialError (a caller catching that crashed)."""
    with (
        troth.Node.open("acme", clock=clock) as hub,
        troth.Node.open("agents", clock=clock) as agents,
    ):
        acme = hub.create_authority()
        her = agents.identities.create("customer")
        member = agents.enroll(acme.ticket(MEMBER), identity=her)
        verifier = troth.Verifier(
            trust=[acme.identifier],
            feeds=acme if source == "authority" else agents,
            clock=FixedClock(clock.now() - 3600),
        )
        with pytest.raises(troth.CredentialError) as refused:
            verifier.verify(member, presenter=her.identifier)
        expected = {  # the node's copy is its own: the root's history checked, not yet valid
            "authority": troth.CredentialFailure.NO_FEED,
            "node": troth.CredentialFailure.ISSUER_INVALID,
        }[source]
        assert refused.value.reason is expected
