"""Review 35d, authority: what `Authority.revoke_identity` and `Authority.revoke` take."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

import troth
from troth.clock import FixedClock


@dataclass
class Members:
    """acme's hub and an agents node whose customer acme enrolled."""

    hub: troth.Node
    agents: troth.Node
    acme: troth.Authority
    customer: troth.Identity
    member: troth.Credential

    def verify(self, clock: FixedClock) -> troth.VerifiedCredential:
        verifier = troth.Verifier(trust=[self.acme.identifier], feeds=self.acme, clock=clock)
        return verifier.verify(self.member, presenter=self.customer)


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


def test_revoking_an_identity_by_its_digest_is_refused_not_a_credential_revocation(
    members: Members, clock: FixedClock
) -> None:
    """Authority 1: `revoke_identity(identity.identifier.digest)` (the identifier's 32 bytes)
    was passed on as a credential revocation: a feed entry revoking a credential id no
    credential has, the number returned as for any revocation, and the identity went on
    verifying, its operator believing it revoked. Anything but an identifier (an
    `Identifier`, an `Identity`, identifier text) is a TypeError, and nothing is written.
    Was a strict xfail until `revoke_identity` checked what it is given."""
    with pytest.raises(TypeError, match="an identity to revoke"):
        members.acme.revoke_identity(members.customer.identifier.digest)  # type: ignore[arg-type]
    assert members.acme.revoke_identity(members.customer.identifier, reason="gone") == 0


def test_an_identity_is_revoked_given_as_an_identity_or_identifier_text(
    members: Members, clock: FixedClock
) -> None:
    """Authority 2: every other argument naming another identity takes an `Identity` or
    identifier text too, but `revoke_identity(identity)` failed deep in the store
    (StorageError "Error binding parameter") and identifier text was taken for a credential
    id (ValueError "a credential revocation names 32 bytes"): the identity stayed valid. Was a
    strict xfail until `revoke_identity` took an `Identity` and identifier text."""
    members.verify(clock)
    assert members.acme.revoke_identity(members.customer, reason="left") == 0
    with pytest.raises(troth.CredentialError) as refused:
        members.verify(clock)
    assert refused.value.reason is troth.CredentialFailure.REVOKED
    other = members.agents.identities.create("other")
    assert members.acme.revoke_identity(str(other.identifier), reason="left") == 1


def test_revoke_takes_a_credential_not_an_identity(members: Members) -> None:
    """Authority 3: `revoke` takes a credential (or its id), but an `Identifier` passed to it
    was revoked as an identity for good, every link it issued or holds with it: a TypeError
    (`revoke_identity` is the call for that), and nothing is written. Was a strict xfail
    until `revoke` checked what it is given."""
    with pytest.raises(TypeError, match="revoke_identity"):
        members.acme.revoke(members.customer.identifier)  # type: ignore[arg-type]
    assert members.acme.revoke(members.member, reason="left") == 0
