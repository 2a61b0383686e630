"""Review 56a (credentials and delegation): properties over chains an attacker builds by hand.

`test_credentials_properties.py` draws chains through `delegate`, which refuses amplification
when a link is made; a verifier must refuse it again, since whoever holds a chain can sign any
link below it. Here each link is signed by hand with real keys and every field drawn, mostly
near what an honest delegation holds and often past it (wider attributes, a later expiry, an
equal or higher depth, a wrong parent, a repeated identity, a misaligned issuer, a parent on
the root, a root of an identity no one trusts). Whatever the verifier accepts must hold no more
than each of its ancestors, carry every ancestor's caveats in order, and be refused once the
authority's feed revokes any link or identity of it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.parties import Party, make_party, verified_feed
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    RevocationKind,
    TrustPolicy,
    VerifiedCredential,
    VerifiedFeed,
)
from troth.credentials.format import CredentialBody, Delegation, SignedCredential
from troth.errors import CredentialError, CredentialFailure
from troth.identity import Identifier
from troth.vault import SoftwareVault

T = 1_780_000_000
SKEW = 60
VAULT = SoftwareVault()
PARTIES = [make_party(VAULT, now=T) for _ in range(6)]
ANCHORS = (PARTIES[0], PARTIES[1])  # two co-trusted authorities: roots may be either's
POLICY = TrustPolicy(frozenset(p.identifier for p in ANCHORS), max_clock_skew=SKEW)
FEEDS = {p.identifier: verified_feed(p, now=T) for p in ANCHORS}

KEYS = ["orders.access", "orders.customer", "troth.role"]
VALUES = ["a", "b", "c"]
VALUE = st.sampled_from(VALUES) | st.frozensets(st.sampled_from(VALUES), min_size=1)
ATTRIBUTES = st.dictionaries(st.sampled_from(KEYS), VALUE).map(Attributes)
CAVEATS = st.lists(st.sampled_from(["ip in 10.0.0.0/8", "read only", "before noon"]), max_size=2)


@dataclass(frozen=True)
class Drawn:
    """A hand-built chain and the bodies it signs, root first."""

    chain: CredentialChain
    bodies: tuple[CredentialBody, ...]


def _narrower(draw: st.DrawFn, parent: Attributes) -> Attributes:
    """Mostly a subset of `parent` (a str or a set per value), sometimes anything."""
    if draw(st.integers(0, 4)) == 4:
        return draw(ATTRIBUTES)
    chosen: dict[str, str | frozenset[str]] = {}
    for key in parent:
        if draw(st.booleans()):
            held = sorted(parent.values_of(key))
            subset = draw(st.lists(st.sampled_from(held), min_size=1, unique=True))
            one = len(subset) == 1 and draw(st.booleans())
            chosen[key] = subset[0] if one else frozenset(subset)
    return Attributes(chosen)


def _party(draw: st.DrawFn, usual: Party, odds: int = 5) -> Party:
    """`usual`, or (one time in `odds`) any party (hypothesis draws small numbers first: the
    honest choice is the smallest)."""
    return draw(st.sampled_from(PARTIES)) if draw(st.integers(0, odds - 1)) == odds - 1 else usual


@st.composite
def hand_chains(draw: st.DrawFn) -> Drawn:
    """A chain of 1-4 links, each signed by hand by its issuer (any field drawn)."""
    links = draw(st.integers(1, 4))
    fresh = [p for p in PARTIES if p not in ANCHORS]
    subjects = draw(st.permutations(fresh))
    issuer = _party(draw, draw(st.sampled_from(ANCHORS)), odds=8)
    credentials: list[SignedCredential] = []
    bodies: list[CredentialBody] = []
    histories: list[bytes] = []
    for index in range(links):
        previous = bodies[-1] if bodies else None
        subject = _party(draw, subjects[index % len(subjects)], odds=8)
        if previous is None:
            attributes = draw(ATTRIBUTES)
            not_before = T - draw(st.integers(0, 600))
            expires_at = T + draw(st.integers(-120, 600))
            depth = draw(st.integers(links - 1, 8))
            wrong_parent = draw(st.integers(0, 15)) == 15
            delegation = Delegation(bytes(32), "p") if wrong_parent else None
        else:
            attributes = _narrower(draw, previous.attributes)
            not_before = previous.not_before + draw(st.integers(-60, 60))
            expires_at = previous.expires_at + draw(st.sampled_from([0, -1, -300, 1, 300]))
            lower = draw(st.integers(0, 4)) != 4
            depth = max(previous.depth - 1, 0) if lower else draw(st.integers(0, 8))
            right_parent = draw(st.integers(0, 7)) != 7
            parent = credentials[-1].hash if right_parent else bytes(32)
            delegation = Delegation(parent, "p", tuple(draw(CAVEATS)))
        if not_before > expires_at:
            not_before = expires_at
        body = CredentialBody(
            bytes([index]) * 16,
            subject.identifier,
            issuer.identifier,
            attributes,
            T,
            not_before,
            expires_at,
            depth,
            delegation,
        )
        data = body.encode()
        signature = issuer.signer.sign(data)
        credentials.append(SignedCredential(data, signature, issuer.signer.attestation))
        bodies.append(body)
        if issuer.identity.history not in histories:
            histories.append(issuer.identity.history)
        issuer = _party(draw, subject, odds=8)  # the next link's issuer: mostly this subject
    return Drawn(CredentialChain(tuple(credentials), tuple(histories)), tuple(bodies))


def _verify(
    drawn: Drawn, *, now: int, feeds: dict[Identifier, VerifiedFeed] | None = None
) -> VerifiedCredential:
    return ChainVerifier(POLICY).verify(
        drawn.chain.encode(),
        presenter=drawn.bodies[-1].subject,
        feeds=FEEDS if feeds is None else feeds,
        now=now,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hand_chains(), st.integers(-90, 290))
def test_what_a_verifier_accepts_never_exceeds_an_ancestor(drawn: Drawn, offset: int) -> None:
    """Any hand-built chain a verifier accepts: its root issued by a trust anchor, each link
    issued by the subject above it and naming that link by hash, each link's attributes within
    every ancestor's, its expiry no later, its depth lower, no identity twice; the result's
    attributes are the last link's, its caveats every link's in link order (none dropped or
    reordered), its window inside every link's (with the skew), and its fields those signed."""
    now = T + offset
    try:
        result = _verify(drawn, now=now)
    except CredentialError:
        return
    bodies, links = drawn.bodies, result.links
    assert len(links) == len(bodies)
    assert bodies[0].issuer in POLICY.anchors
    assert bodies[0].delegation is None
    assert result.authority == bodies[0].issuer
    assert result.actor == bodies[-1].subject
    seen = [bodies[0].issuer, *(b.subject for b in bodies)]
    assert len(set(seen)) == len(seen)
    for index, (link, body, signed) in enumerate(
        zip(links, bodies, drawn.chain.credentials, strict=True)
    ):
        assert (link.issuer, link.subject, link.attributes) == (
            body.issuer,
            body.subject,
            body.attributes,
        )
        assert (link.not_before, link.expires_at, link.depth) == (
            body.not_before,
            body.expires_at,
            body.depth,
        )
        assert link.hash == signed.hash
        assert link.not_before - SKEW <= now < link.expires_at + SKEW
        for ancestor in bodies[:index]:
            assert body.attributes.first_excess_over(ancestor.attributes) is None
            assert result.attributes.first_excess_over(ancestor.attributes) is None
            assert body.expires_at <= ancestor.expires_at
            assert body.depth < ancestor.depth
        if index:
            assert body.issuer == bodies[index - 1].subject
            assert body.delegation is not None
            assert body.delegation.parent == drawn.chain.credentials[index - 1].hash
    assert result.attributes == bodies[-1].attributes
    expected = tuple(c for b in bodies if b.delegation is not None for c in b.delegation.caveats)
    assert result.caveats == expected
    assert result.not_before == max(b.not_before for b in bodies)
    assert result.expires_at == min(b.expires_at for b in bodies)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hand_chains(), st.data())
def test_revoking_any_link_or_identity_of_an_accepted_chain_refuses_it(
    drawn: Drawn, data: st.DataObject
) -> None:
    """A chain that verifies is refused (REVOKED, at the link named) once its authority's feed
    revokes any of its links, or the identity of any issuer or subject in it."""
    try:
        _verify(drawn, now=T)
    except CredentialError:
        return
    bodies = drawn.bodies
    targets = [
        *((RevocationKind.CREDENTIAL, c.hash, i) for i, c in enumerate(drawn.chain.credentials)),
        *((RevocationKind.IDENTITY, b.subject.digest, i) for i, b in enumerate(bodies)),
        (RevocationKind.IDENTITY, bodies[0].issuer.digest, 0),
    ]
    kind, target, index = data.draw(st.sampled_from(targets))
    authority = next(p for p in ANCHORS if p.identifier == bodies[0].issuer)
    revoking = verified_feed(authority, [(int(kind), target)], now=T, revoked_at=T)
    with pytest.raises(CredentialError) as caught:
        _verify(drawn, now=T, feeds={**FEEDS, authority.identifier: revoking})
    assert caught.value.reason is CredentialFailure.REVOKED, caught.value
    assert caught.value.link == index, (caught.value, index)
