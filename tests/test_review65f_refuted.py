"""Review 65f: attacks on credentials, delegation and caveats that did not work.

Each test is a real attempt; it fails if the defence it names breaks.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.parties import Party, hand_link, make_party, verified_feed
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    RevocationKind,
    TrustPolicy,
    delegate,
    issue_credential,
)
from troth.credentials.vc import export_credential_vc, sign_eddsa_jcs_2022, verify_troth_vc
from troth.errors import CredentialError, CredentialFailure
from troth.gates.caveats import evaluate_caveats
from troth.gates.entities import credential_entities
from troth.vault import SoftwareVault

T = 1_780_000_000
DAY = 86_400
_F = CredentialFailure


def _world() -> tuple[Party, Party, Party, Party, CredentialChain]:
    """acme -> m (orders.access=read, a string) -> b -> c, each link a day shorter."""
    vault = SoftwareVault()
    acme, m, b, c = (make_party(vault, now=T) for _ in range(4))
    root = issue_credential(
        acme.signer,
        subject=m.identifier,
        attributes=Attributes({"orders.access": "read"}),
        now=T,
        ttl=10 * DAY,
        depth=4,
    )
    return acme, m, b, c, CredentialChain((root,), (acme.identity.history,))


def _verifier(acme: Party) -> ChainVerifier:
    return ChainVerifier(TrustPolicy(frozenset({acme.identifier})))


def _refused(
    verifier: ChainVerifier, chain: bytes, presenter: Party, feeds: Any
) -> CredentialError:
    with pytest.raises(CredentialError) as caught:
        verifier.verify(chain, presenter=presenter.identifier, feeds=feeds, now=T + 10)
    return caught.value


def test_a_string_turned_into_a_wider_set_is_amplification_and_a_set_of_one_gains_nothing() -> None:
    """A delegate re-types the parent's string value as a set: with another value it is
    refused, and as the set of the one value the Cedar entities read it as the parent's (every
    attribute a Set<String>), so no `==` against a string tells the two apart."""
    acme, m, b, _, chain = _world()
    feeds = {acme.identifier: verified_feed(acme, now=T)}
    wider = hand_link(
        m,
        chain,
        b.identifier,
        Attributes({"orders.access": frozenset({"read", "write"})}),
        now=T,
        expires_at=T + DAY,
    )
    refused = _refused(_verifier(acme), wider.encode(), b, feeds)
    assert (refused.reason, refused.link) == (_F.AMPLIFIED, 1)
    same = hand_link(
        m,
        chain,
        b.identifier,
        Attributes({"orders.access": frozenset({"read"})}),
        now=T,
        expires_at=T + DAY,
    )
    verified = _verifier(acme).verify(same.encode(), presenter=b.identifier, feeds=feeds, now=T)
    tags = [e["tags"] for e in json.loads(credential_entities(verified)) if "tags" in e]
    assert len(tags) == 2  # both links: the root's string, the delegate's set of one
    assert all(t == {"orders.access": ["read"]} for t in tags)


def test_a_chain_presented_by_a_middle_holder_is_not_hers() -> None:
    """The middle delegator shows her delegate's chain as her own: WRONG_SUBJECT."""
    acme, m, b, c, chain = _world()
    read = Attributes({"orders.access": "read"})
    to_b = delegate(
        m.signer, chain, subject=b.identifier, attributes=read, now=T, ttl=DAY, purpose="p"
    )
    to_c = delegate(
        b.signer, to_b, subject=c.identifier, attributes=read, now=T, ttl=DAY - 1, purpose="p"
    )
    feeds = {acme.identifier: verified_feed(acme, now=T)}
    assert _refused(_verifier(acme), to_c.encode(), b, feeds).reason is _F.WRONG_SUBJECT


def test_a_not_yet_valid_middle_link_holds_back_the_whole_chain() -> None:
    """A middle link valid only from tomorrow, below it a leaf valid from now: the chain is
    not yet valid (the middle link named), not valid from the leaf's start."""
    acme, m, b, c, chain = _world()
    read = Attributes({"orders.access": "read"})
    later = hand_link(m, chain, b.identifier, read, now=T + DAY, expires_at=T + 3 * DAY)
    leaf = hand_link(b, later, c.identifier, read, now=T, expires_at=T + 2 * DAY)
    feeds = {acme.identifier: verified_feed(acme, now=T + 10)}
    refused = _refused(_verifier(acme), leaf.encode(), c, feeds)
    assert (refused.reason, refused.link) == (_F.NOT_YET_VALID, 1)


def test_a_middle_link_revoked_after_the_chain_was_cached_is_refused() -> None:
    """A verifier that verified (and cached) the chain is given the feed revoking its middle
    link: the cached bytes checks do not carry the old answer."""
    acme, m, b, c, chain = _world()
    read = Attributes({"orders.access": "read"})
    to_b = delegate(
        m.signer, chain, subject=b.identifier, attributes=read, now=T, ttl=DAY, purpose="p"
    )
    to_c = delegate(
        b.signer, to_b, subject=c.identifier, attributes=read, now=T, ttl=DAY - 1, purpose="p"
    )
    data = to_c.encode()
    verifier = _verifier(acme)
    fresh = {acme.identifier: verified_feed(acme, now=T + 10)}
    verifier.verify(data, presenter=c.identifier, feeds=fresh, now=T + 10)
    middle = to_c.credentials[1].hash
    revoked = {
        acme.identifier: verified_feed(acme, [(int(RevocationKind.CREDENTIAL), middle)], now=T + 10)
    }
    refused = _refused(verifier, data, c, revoked)
    assert (refused.reason, refused.link) == (_F.REVOKED, 1)


def _vc(acme: Party, m: Party) -> dict[str, Any]:
    return export_credential_vc(
        acme.signer,
        credential_id=b"\x01" * 16,
        subject=m.identifier,
        attributes=Attributes({"orders.access": "read"}),
        valid_from=T,
        valid_until=T + DAY,
        now=T,
    )


def test_a_vc_field_changed_after_signing_is_not_covered() -> None:
    """An attribute widened in a VC after it was signed, or the proof's own `created` moved
    (an option the proof config hash covers): BAD_SIGNATURE both."""
    acme, m, _, _, _ = _world()
    policy = TrustPolicy(frozenset({acme.identifier}))
    feeds = {acme.identifier: verified_feed(acme, now=T + 10)}
    document = _vc(acme, m)
    verify_troth_vc(document, policy=policy, issuer=acme.identity, feeds=feeds, now=T + 10)
    widened = json.loads(json.dumps(document))
    widened["credentialSubject"]["attributes"]["orders.access"] = ["read", "write"]
    moved = json.loads(json.dumps(document))
    moved["proof"]["created"] = "2030-01-01T00:00:00Z"
    for forged in (widened, moved):
        with pytest.raises(CredentialError) as caught:
            verify_troth_vc(forged, policy=policy, issuer=acme.identity, feeds=feeds, now=T + 10)
        assert caught.value.reason is _F.BAD_SIGNATURE


def test_a_vc_re_signed_by_a_stranger_under_the_authoritys_method_is_refused() -> None:
    """A stranger signs a widened VC with her own key, naming the authority's verification
    method and carrying the authority's key attestation: the attested key verifies no
    signature of hers."""
    acme, m, stranger, _, _ = _world()
    policy = TrustPolicy(frozenset({acme.identifier}))
    feeds = {acme.identifier: verified_feed(acme, now=T + 10)}
    document = _vc(acme, m)
    options = dict(document["proof"])
    del options["proofValue"], options["@context"]
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    unsecured["credentialSubject"] = {
        "id": m.identifier.did,
        "attributes": {"orders.access": ["read", "write"]},
    }
    forged = sign_eddsa_jcs_2022(unsecured, options, stranger.signer.sign)
    with pytest.raises(CredentialError) as caught:
        verify_troth_vc(forged, policy=policy, issuer=acme.identity, feeds=feeds, now=T + 10)
    assert caught.value.reason is _F.BAD_SIGNATURE


def test_a_hand_built_caveat_injecting_a_permit_or_a_later_true_lifts_nothing() -> None:
    """A delegate signs by hand (no `delegate` check) a caveat that closes the forbid and opens
    a permit, below a parent caveat bounding the amount: outside a bundle the injected text is
    no condition (not evaluated: refused), and a later `true` caveat lifts no earlier one."""
    acme, m, b, c, chain = _world()
    read = Attributes({"orders.access": "read"})
    bounded = hand_link(
        m, chain, b.identifier, read, now=T, expires_at=T + DAY, caveats=("context.amount <= 100",)
    )
    injected = hand_link(
        b,
        bounded,
        c.identifier,
        read,
        now=T,
        expires_at=T + DAY - 1,
        caveats=(
            "true }; permit(principal, action, resource); "
            "forbid(principal, action, resource) unless { true",
        ),
    )
    lifted = hand_link(
        b, bounded, c.identifier, read, now=T, expires_at=T + DAY - 1, caveats=("true",)
    )
    feeds = {acme.identifier: verified_feed(acme, now=T)}
    verifier = _verifier(acme)
    over = json.dumps({"amount": 500, "now": T})
    failure = evaluate_caveats(
        verifier.verify(injected.encode(), presenter=c.identifier, feeds=feeds, now=T), over
    )
    assert failure is not None
    assert (failure.ids, failure.evaluated) == (("caveat:2:0",), False)
    failure = evaluate_caveats(
        verifier.verify(lifted.encode(), presenter=c.identifier, feeds=feeds, now=T), over
    )
    assert failure is not None
    assert (failure.ids, failure.evaluated) == (("caveat:1:0",), True)
