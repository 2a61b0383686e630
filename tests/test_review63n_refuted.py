"""Review 63n, refuted: attacks on credentials and delegation that did not work. Each test is
the attack; it fails if the defence it names breaks.

World: authority acme, its member mia (depth 3), her delegate bob, his delegate cal; another
authority, globex, with its own member. Times from T.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.feeds import entries, pages
from tests.support.parties import Party, hand_link, make_party, signer_as
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    RevocationKind,
    TrustPolicy,
    VerifiedFeed,
    delegate,
    issue_credential,
    verify_page,
)
from troth.credentials.format import CredentialBody, SignedCredential
from troth.credentials.vc import export_credential_vc, verify_troth_vc
from troth.encoding import cbor
from troth.errors import CredentialError, CredentialFailure, DecodeError
from troth.gates.caveats import evaluate_caveats
from troth.gates.entities import credential_entities
from troth.identity import Identifier, rotate_identity
from troth.node import init_node, open_node
from troth.vault import SoftwareVault

T = 1_780_000_000
DAY = 86_400
SKEW = 60
ORDERS = Attributes({"orders.access": frozenset({"read", "write"}), "orders.region": "eu"})
READ = Attributes({"orders.access": "read"})
_F = CredentialFailure


def feed(authority: Party, targets: Sequence[tuple[int, bytes]] = (), *, now: int) -> VerifiedFeed:
    """`authority`'s feed revoking / superseding (kind, target) pairs (a supersession: of 2
    changes), signed and verified at `now`."""
    made = entries(authority, targets, at=now)
    (page,) = pages(authority, made, now=now, per_page=max(1, len(made)))
    return verify_page(page, authority=authority.identifier, now=now)


@dataclass
class World:
    vault: SoftwareVault
    acme: Party
    globex: Party
    mia: Party
    bob: Party
    cal: Party
    root: CredentialChain

    @classmethod
    def make(cls) -> World:
        vault = SoftwareVault()
        acme, globex, mia, bob, cal = (make_party(vault, now=T) for _ in range(5))
        credential = issue_credential(
            acme.signer, subject=mia.identifier, attributes=ORDERS, now=T, ttl=DAY, depth=3
        )
        return cls(
            vault,
            acme,
            globex,
            mia,
            bob,
            cal,
            CredentialChain((credential,), (acme.identity.history,)),
        )

    def verifier(self) -> ChainVerifier:
        return ChainVerifier(
            TrustPolicy(
                frozenset({self.acme.identifier, self.globex.identifier}), max_clock_skew=SKEW
            )
        )

    def to_bob(self, attributes: Attributes = READ, **kwargs: object) -> CredentialChain:
        return delegate(
            self.mia.signer,
            self.root,
            subject=self.bob.identifier,
            attributes=attributes,
            now=T,
            ttl=DAY // 2,
            purpose="p",
            **kwargs,  # type: ignore[arg-type]
        )

    def feeds(
        self, targets: Sequence[tuple[int, bytes]] = (), *, now: int = T + 10
    ) -> dict[Identifier, VerifiedFeed]:
        return {self.acme.identifier: feed(self.acme, targets, now=now)}


@pytest.fixture
def world() -> World:
    return World.make()


def _refused(
    verifier: ChainVerifier, data: bytes, presenter: Identifier, **kw: object
) -> CredentialError:
    with pytest.raises(CredentialError) as caught:
        verifier.verify(data, presenter=presenter, **kw)  # type: ignore[arg-type]
    return caught.value


# -- the verifier's cache -----------------------------------------------------------------------


def test_a_cached_chain_is_not_the_delegators_to_present(world: World) -> None:
    """Refuted: "bob's delegator mia, who holds the middle of the chain, presents bob's chain
    once it is cached for bob". The presenter is checked at every call."""
    verifier = world.verifier()
    data = world.to_bob().encode()
    verifier.verify(data, presenter=world.bob.identifier, feeds=world.feeds(), now=T + 10)
    refused = _refused(verifier, data, world.mia.identifier, feeds=world.feeds(), now=T + 11)
    assert refused.reason is _F.WRONG_SUBJECT


def test_a_cached_chain_expires_with_its_shortest_link(world: World) -> None:
    """Refuted: "a chain cached while valid keeps verifying past its delegation's expiry"."""
    verifier = world.verifier()
    data = world.to_bob().encode()
    bob = world.bob.identifier
    verifier.verify(data, presenter=bob, feeds=world.feeds(), now=T + 10)
    late = T + DAY // 2 + SKEW  # the root is still valid, bob's link is not
    refused = _refused(verifier, data, bob, feeds=world.feeds(now=late), now=late)
    assert (refused.reason, refused.link) == (_F.EXPIRED, 1)


def test_a_cached_chain_is_refused_once_its_delegators_history_is_superseded(world: World) -> None:
    """Refuted: "mia's link, signed by her key before her rotation and cached, still verifies
    once acme's feed names the rotation"."""
    verifier = world.verifier()
    data = world.to_bob().encode()
    bob = world.bob.identifier
    verifier.verify(data, presenter=bob, feeds=world.feeds(), now=T + 10)
    named = world.feeds([(RevocationKind.SUPERSEDED, world.mia.identifier.digest)], now=T + 20)
    refused = _refused(verifier, data, bob, feeds=named, now=T + 20)
    assert (refused.reason, refused.link) == (_F.SUPERSEDED, 1)


# -- delegation only narrows ----------------------------------------------------------------------


def test_a_value_in_another_unicode_normal_form_is_not_held(world: World) -> None:
    """Refuted: "a delegate gains a value the parent lacks by writing it in another normal
    form (NFD of an NFC value, which some tools show alike)". Values compare by code points,
    the same way in the gates (Cedar), so it is refused as an amplification."""
    root = issue_credential(
        world.acme.signer,
        subject=world.mia.identifier,
        attributes=Attributes({"orders.region": unicodedata.normalize("NFC", "Zürich")}),
        now=T,
        ttl=DAY,
        depth=2,
    )
    chain = CredentialChain((root,), (world.acme.identity.history,))
    wider = Attributes({"orders.region": unicodedata.normalize("NFD", "Zürich")})
    assert wider["orders.region"] != unicodedata.normalize("NFC", "Zürich")
    made = hand_link(world.mia, chain, world.bob.identifier, wider, now=T, expires_at=T + 100)
    refused = _refused(
        world.verifier(), made.encode(), world.bob.identifier, feeds=world.feeds(), now=T + 10
    )
    assert (refused.reason, refused.link) == (_F.AMPLIFIED, 1)


def test_a_string_restated_as_a_set_of_one_gives_the_gates_the_same_tags(world: World) -> None:
    """Refuted: "a delegate re-encodes the string `eu` as the set [`eu`], which a gate reads as
    another type (a `==` comparison, a forbid on the string, then missing it)". It narrows to
    the same set, and every gate sees the same one-element set either way."""
    as_set = Attributes({"orders.region": frozenset({"eu"})})
    chain = hand_link(
        world.mia, world.root, world.bob.identifier, as_set, now=T, expires_at=T + 100
    )
    verified = world.verifier().verify(
        chain.encode(), presenter=world.bob.identifier, feeds=world.feeds(), now=T + 10
    )
    tags = [entity["tags"] for entity in json.loads(credential_entities(verified))]
    assert tags[0]["orders.region"] == tags[1]["orders.region"] == ["eu"]


def test_a_duplicate_attribute_key_is_not_decoded() -> None:
    """Refuted: "a body whose attribute map names a key twice reads as one set on one reader
    and another elsewhere". Canonical CBOR refuses a duplicate key."""
    body = CredentialBody(
        bytes(16), Identifier(bytes(32)), Identifier(bytes([1]) * 32), READ, T, T, T + 1, 0, None
    ).encode()
    marker = cbor.encode({"orders.access": "read"})
    twice = cbor.encode("orders.access") + cbor.encode("admin")
    doubled = body.replace(marker, b"\xa2" + marker[1:] + twice)
    assert doubled != body
    with pytest.raises(DecodeError):
        CredentialBody.decode(doubled)


def test_a_link_without_caveats_keeps_its_parents(world: World) -> None:
    """Refuted: "bob's delegate drops the caveat mia put on bob by re-delegating without it".
    Every link's caveats are the chain's, whatever the links below carry."""
    to_bob = world.to_bob(caveats=["context.amount < 100"])
    to_cal = delegate(
        world.bob.signer,
        to_bob,
        subject=world.cal.identifier,
        attributes=READ,
        now=T,
        ttl=100,
        purpose="p",
    )
    verified = world.verifier().verify(
        to_cal.encode(), presenter=world.cal.identifier, feeds=world.feeds(), now=T + 10
    )
    assert verified.caveats == ("context.amount < 100",)
    failure = evaluate_caveats(verified, '{"amount": 500}')
    assert failure is not None
    assert failure.ids == ("caveat:1:0",)


def test_a_delegate_at_depth_zero_cannot_delegate(world: World) -> None:
    """Refuted: "a delegate given depth 0 re-delegates anyway, by hand, at depth 0 again"."""
    to_bob = world.to_bob(depth=0)
    with pytest.raises(CredentialError) as caught:
        delegate(
            world.bob.signer,
            to_bob,
            subject=world.cal.identifier,
            attributes=READ,
            now=T,
            ttl=100,
            purpose="p",
        )
    assert caught.value.reason is _F.DEPTH_EXCEEDED
    made = hand_link(
        world.bob, to_bob, world.cal.identifier, READ, now=T, expires_at=T + 100, depth=0
    )
    refused = _refused(
        world.verifier(), made.encode(), world.cal.identifier, feeds=world.feeds(), now=T + 10
    )
    assert (refused.reason, refused.link) == (_F.DEPTH_EXCEEDED, 2)


def test_a_link_spliced_from_another_authoritys_chain_is_refused(world: World) -> None:
    """Refuted: "mix authorities: a link bob got under globex (wider attributes) appended to
    his acme chain, or acme's chain continued under globex's root". The parent hash binds each
    link to its chain."""
    wide = Attributes({"orders.access": frozenset({"read", "write", "admin"})})
    g_root = issue_credential(
        world.globex.signer, subject=world.mia.identifier, attributes=wide, now=T, ttl=DAY, depth=3
    )
    g_chain = CredentialChain((g_root,), (world.globex.identity.history,))
    g_bob = delegate(
        world.mia.signer,
        g_chain,
        subject=world.bob.identifier,
        attributes=wide,
        now=T,
        ttl=100,
        purpose="p",
    )
    spliced = CredentialChain(
        (*world.root.credentials, g_bob.credentials[1]),
        (*world.root.histories, world.mia.identity.history),
    )
    refused = _refused(
        world.verifier(), spliced.encode(), world.bob.identifier, feeds=world.feeds(), now=T + 10
    )
    assert (refused.reason, refused.link) == (_F.BROKEN_LINK, 1)


def test_a_link_signed_by_the_retired_key_fails_beside_the_new_history(world: World) -> None:
    """Refuted: "after mia rotated (her signing key stolen), the thief signs with her retired
    signing key and ships her new history, which the feed accepts". The attestation is bound to
    the change it was made under: with the new history it is stale at once, with the old one
    the feed's supersession refuses it (before the feed names it, a store-less verifier
    accepts it: docs/credentials.md, "Superseded histories")."""
    primary, rotated, _ = rotate_identity(
        world.vault,
        world.mia.identity,
        world.mia.primary,
        world.mia.next_primary,
        now=T + 5,
        valid_for=DAY,
    )
    assert signer_as(world.vault, primary, rotated, now=T + 5).identity == rotated
    thief = delegate(
        world.mia.signer,
        world.root,
        subject=world.bob.identifier,
        attributes=READ,
        now=T + 6,
        ttl=100,
        purpose="p",
    )
    with_new = CredentialChain(thief.credentials, (world.acme.identity.history, rotated.history))
    refused = _refused(
        world.verifier(), with_new.encode(), world.bob.identifier, feeds=world.feeds(), now=T + 10
    )
    assert (refused.reason, refused.link) == (_F.ATTESTATION_INVALID, 1)
    named = world.feeds([(RevocationKind.SUPERSEDED, world.mia.identifier.digest)])
    refused = _refused(
        world.verifier(), thief.encode(), world.bob.identifier, feeds=named, now=T + 10
    )
    assert (refused.reason, refused.link) == (_F.SUPERSEDED, 1)


# -- VC round trip, the wallet, pending enrollments ---------------------------------------------


def test_a_vc_round_trip_keeps_each_value_and_a_broadened_one_fails(world: World) -> None:
    """Refuted: "a VC export and verify loses a restriction (a one-element set becomes a string
    or the reverse, a set is merged), or a holder broadens its attributes after export"."""
    attributes = Attributes({"orders.access": frozenset({"read"}), "orders.region": "eu"})
    document = export_credential_vc(
        world.acme.signer,
        credential_id=bytes(16),
        subject=world.mia.identifier,
        attributes=attributes,
        valid_from=T,
        valid_until=T + DAY,
        now=T,
    )
    policy = TrustPolicy(frozenset({world.acme.identifier}))
    verified = verify_troth_vc(
        document, policy=policy, issuer=world.acme.identity, feeds=world.feeds(), now=T + 10
    )
    assert verified.attributes == attributes
    document["credentialSubject"]["attributes"]["orders.access"] = ["read", "write"]
    with pytest.raises(CredentialError) as caught:
        verify_troth_vc(
            document, policy=policy, issuer=world.acme.identity, feeds=world.feeds(), now=T + 10
        )
    assert caught.value.reason is _F.BAD_SIGNATURE


def test_the_wallet_holds_no_chain_with_a_forged_link(world: World, tmp_path: Path) -> None:
    """Refuted: "the wallet stores an unverified chain: a link bob never signed, handed to his
    delegate's node, is held and shown". `hold` checks every signature before storing."""
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        me = node.identities.create(now=T, name="me")
        to_bob = world.to_bob()
        made = CredentialBody.decode(
            hand_link(world.cal, to_bob, me.identifier, READ, now=T, expires_at=T + 100)
            .credentials[-1]
            .body
        )
        # cal signs a link claiming bob as its issuer
        body = CredentialBody(
            made.id,
            made.subject,
            world.bob.identifier,
            made.attributes,
            made.created_at,
            made.not_before,
            made.expires_at,
            made.depth,
            made.delegation,
        ).encode()
        fake = SignedCredential(body, world.cal.signer.sign(body), world.bob.signer.attestation)
        chain = CredentialChain(
            (*to_bob.credentials, fake), (*to_bob.histories, world.bob.identity.history)
        )
        with pytest.raises(CredentialError) as caught:
            node.wallet.hold("me", chain.encode(), now=T + 10)
        assert (caught.value.reason, caught.value.link) == (_F.BAD_SIGNATURE, 2)
        assert node.wallet.held("me") == []


def test_a_replayed_enrollment_record_resumes_the_first(tmp_path: Path) -> None:
    """Refuted: "recording the same enrollment again (a resumed or replayed `troth enroll`)
    piles up records, or moves its start later". One record per ticket, its start kept."""
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        node.identities.create(now=T, name="me")
        authority = Identifier(bytes([7]) * 32)
        first = node.wallet.record_enrollment("me", authority, "ticket", "tcp://a:1", now=T)
        again = node.wallet.record_enrollment("me", authority, "ticket", "tcp://a:1", now=T + 50)
        assert first.resumed is None
        assert again.resumed == first.record
        (pending,) = node.wallet.pending_enrollments("me")
        assert pending.started_at == T
