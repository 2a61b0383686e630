"""Review 51e, verified 11: the verified types (`VerifiedIdentity`, `VerifiedCredential`,
`VerifiedFeed`, `VerifiedBundle`, `VerifiedRecord`) refuse to be constructed without their
module's token, but the token was an ordinary init field: `dataclasses.replace(verified,
attributes=Attributes({"orders.access": "admin"}))` passed it along and made a
`VerifiedCredential` granting what no chain granted (a `VerifiedIdentity` with another
history, a `VerifiedFeed` with fewer entries: each passed on as verified). The token is no
longer carried by `replace`: each of them refuses to be replaced."""

from __future__ import annotations

import dataclasses

import pytest

import troth
from troth.credentials import VerifiedCredential
from troth.credentials.revocation_held import VerifiedFeed
from troth.gates.bundles import VerifiedBundle
from troth.identity import VerifiedIdentity
from troth.trace.signing import VerifiedRecord

VERIFIED = [VerifiedIdentity, VerifiedCredential, VerifiedFeed, VerifiedBundle, VerifiedRecord]


@pytest.mark.parametrize("kind", VERIFIED, ids=lambda kind: kind.__name__)
def test_replace_cannot_carry_the_token(kind: type) -> None:
    """An init field is what `replace` passes on (an InitVar is not a field: it must be given)."""
    carried = [f.name for f in dataclasses.fields(kind) if f.name == "_token" and f.init]
    assert carried == [], f"{kind.__name__}._token is passed on by replace"


def test_a_verified_credential_identity_and_feed_are_not_replaced() -> None:
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        member = agents.enroll(acme.ticket({"orders.access": "read"}))
        verified = troth.Verifier(trust=[acme.identifier], feeds=acme).verify(
            member, presenter=agents.identity
        )
        admin = troth.Attributes({"orders.access": "admin"})
        with pytest.raises((TypeError, ValueError)):
            dataclasses.replace(verified, attributes=admin)
        with pytest.raises((TypeError, ValueError)):
            dataclasses.replace(verified.issuers[0], history=b"")
        feed = acme._revocation_feed(acme.identifier, now=member.not_before)
        assert feed is not None
        with pytest.raises((TypeError, ValueError)):
            dataclasses.replace(feed, count=0)  # type: ignore[call-arg]
