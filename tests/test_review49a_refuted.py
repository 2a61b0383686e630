"""Review 49a, refuted: attacks on the public Python API that the code already withstood."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

import troth


@dataclass
class Scene:
    hub: troth.Node
    evil_hub: troth.Node
    agents: troth.Node
    acme: troth.Authority
    evil: troth.Authority
    customer: troth.Identity
    sub: troth.Identity
    sub2: troth.Identity
    to_sub: troth.Credential
    to_sub2: troth.Credential


@pytest.fixture
def scene() -> Iterator[Scene]:
    with (
        troth.Node.open("hub") as hub,
        troth.Node.open("evil") as evil_hub,
        troth.Node.open("agents") as agents,
    ):
        acme, evil = hub.create_authority(), evil_hub.create_authority()
        customer = agents.identities.create("customer")
        sub, sub2 = agents.identities.create("sub"), agents.identities.create("sub2")
        agents.enroll(acme.ticket({"orders.access": ["read", "write"]}), identity=customer)
        agents.enroll(evil.ticket({"orders.access": "read"}), identity=customer)
        read = {"orders.access": "read"}
        to_sub = agents.delegate(customer, to=sub, attributes=read, ttl=600, purpose="p")
        to_sub2 = agents.delegate(customer, to=sub2, attributes=read, ttl=600, purpose="p")
        yield Scene(hub, evil_hub, agents, acme, evil, customer, sub, sub2, to_sub, to_sub2)


def _verifier(s: Scene) -> troth.Verifier:
    return troth.Verifier(trust=[s.acme.identifier, s.evil.identifier], feeds=[s.hub, s.agents])


def test_a_credential_with_forged_fields_revokes_nothing(scene: Scene) -> None:
    """`Credential` is a public dataclass: one built with another authority, or another link's
    id beside this chain, is refused by the authority it names, and every link still verifies
    (the authority judges the chain, never the fields)."""
    roots = {scene.acme.identifier, scene.evil.identifier}
    (other,) = roots - {scene.to_sub.authority}  # the chain is rooted at one of the two
    forged_authority = dataclasses.replace(scene.to_sub, authority=other)
    forged_id = dataclasses.replace(scene.to_sub, id=scene.to_sub2.id)
    for forged in (forged_authority, forged_id):
        with pytest.raises(troth.AuthorityError):
            scene.agents.revoke(forged, by=scene.customer)
    with pytest.raises(troth.AuthorityError):  # sub is not upstream of sub2's link
        scene.agents.revoke(scene.to_sub2, by=scene.sub)
    verifier = _verifier(scene)
    assert verifier.verify(scene.to_sub, presenter=scene.sub).actor == scene.sub.identifier
    assert verifier.verify(scene.to_sub2, presenter=scene.sub2).actor == scene.sub2.identifier


def test_a_verifier_without_the_authoritys_feed_refuses(scene: Scene) -> None:
    """Fed by a node that holds no feed of the authority, a verifier refuses the chain rather
    than verifying it without revocation information (fail closed)."""
    with troth.Node.open("stranger") as stranger:
        verifier = troth.Verifier(trust=[scene.to_sub.authority], feeds=stranger)
        with pytest.raises(troth.CredentialError, match="no revocation feed"):
            verifier.verify(scene.to_sub, presenter=scene.sub)


def test_no_secret_in_reprs_or_in_a_refused_tickets_error(scene: Scene) -> None:
    """A ticket's code is in no error about it; a Credential's chain and an Identity's history
    are in no repr (the chain is what a holder presents)."""
    ticket = scene.acme.ticket({"orders.access": "read"})
    code = ticket.removeprefix("troth-ticket:")
    for mangled in (ticket[:40], ticket[:-6] + "AAAAAA", ticket + "!"):
        with pytest.raises(troth.TrothError) as refused:
            scene.agents.enroll(mangled)
        assert code[:24] not in str(refused.value)
    assert scene.to_sub.chain.hex()[:32] not in repr(scene.to_sub)
    assert scene.sub.history.hex()[:32] not in repr(scene.sub)
    with pytest.raises(troth.ArgumentError) as wrong_type:
        scene.agents.enroll(ticket.encode())  # type: ignore[arg-type]
    assert code[:24] not in str(wrong_type.value)
