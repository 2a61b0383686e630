"""Review 61a: attacks on credentials and delegation that did not work (each test fails if the
defence it shows breaks)."""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.feeds import entries, pages, superseded
from tests.support.parties import Party, hand_link, make_party, signer_as, verified_feed
from tests.test_credentials_vc import VcWorld
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    RevocationKind,
    TrustPolicy,
    VerifiedCredential,
    VerifiedFeed,
    issue_credential,
    verify_page,
)
from troth.credentials.format import CredentialBody, SignedCredential
from troth.credentials.vc import export_credential_vc, verify_troth_vc
from troth.encoding import cbor
from troth.encoding.ijson import load_json
from troth.errors import CredentialError, CredentialFailure, DecodeError, NotFound
from troth.identity import Identifier, VerifiedIdentity, rotate_identity
from troth.node import init_node, open_node
from troth.vault import SoftwareVault

F = CredentialFailure
T = 1_780_000_000
SKEW = 60
READ = Attributes({"orders.access": "read"})
BOTH = Attributes({"orders.access": frozenset({"read", "write"})})


class World:
    """Authority A; member M holding A's credential (read and write, depth 3, an hour); D and
    E, identities M and D delegate to; A's empty feed."""

    def __init__(self) -> None:
        self.vault = SoftwareVault()
        self.a, self.m, self.d, self.e = (make_party(self.vault, now=T) for _ in range(4))
        root = issue_credential(
            self.a.signer, subject=self.m.identifier, attributes=BOTH, now=T, ttl=3600, depth=3
        )
        self.root = CredentialChain((root,), (self.a.identity.history,))
        self.verifier = ChainVerifier(TrustPolicy(frozenset({self.a.identifier})))
        self.feed = verified_feed(self.a, now=T + 10)

    def link(
        self, by: Party, chain: CredentialChain, to: Party | Identifier, **changed: Any
    ) -> CredentialChain:
        arguments: dict[str, Any] = {"attributes": READ, "now": T, "expires_at": T + 600}
        subject = to if isinstance(to, Identifier) else to.identifier
        return hand_link(by, chain, subject, **{**arguments, **changed})

    def two(self) -> CredentialChain:
        """A -> M -> D -> E."""
        return self.link(self.d, self.link(self.m, self.root, self.d), self.e, expires_at=T + 300)

    def verify(
        self, chain: CredentialChain | bytes, to: Party, *, now: int = T + 10, feed: Any = None
    ) -> VerifiedCredential:
        data = chain if isinstance(chain, bytes) else chain.encode()
        feeds = {self.a.identifier: self.feed if feed is None else feed}
        return self.verifier.verify(data, presenter=to.identifier, feeds=feeds, now=now)


def refused(reason: CredentialFailure, call: Callable[[], object], link: int | None = -1) -> None:
    with pytest.raises(CredentialError) as caught:
        call()
    assert caught.value.reason is reason, caught.value
    if link != -1:
        assert caught.value.link == link, caught.value


@pytest.fixture
def world() -> World:
    return World()


# -- widening through a delegation --------------------------------------------------------------


@pytest.mark.parametrize(
    "granted",
    [
        {"orders.access": frozenset({"read", "admin"})},  # a set grown
        {"orders.access": "admin"},  # a value not held
        {"orders.access": "*"},  # a rule's wildcard (AttributeCoversArgument) is no value held
        {"orders.other": "read"},  # a key not held
        {"troth.role": "admin"},  # a reserved key not held
        {"orders.access": "READ"},  # another case of a value held
        {"orders.access": "re\u0430d"},  # a look-alike (Cyrillic a) of a value held
    ],
)
def test_a_link_granting_more_than_its_parent_is_refused(
    world: World, granted: dict[str, Any]
) -> None:
    chain = world.link(world.m, world.root, world.d, attributes=Attributes(granted))
    refused(F.AMPLIFIED, lambda: world.verify(chain, world.d), 1)


def test_a_link_granting_nothing_grants_nothing(world: World) -> None:
    """An empty attribute map is no wildcard: the chain's attributes are the last link's."""
    chain = world.link(world.m, world.root, world.d, attributes=Attributes({}))
    verified = world.verify(chain, world.d)
    assert len(verified.attributes) == 0
    assert verified.attributes.values_of("orders.access") == frozenset()


# -- the window ---------------------------------------------------------------------------------


def test_a_link_outliving_its_parent_is_refused(world: World) -> None:
    chain = world.link(world.m, world.root, world.d, expires_at=T + 3601)
    refused(F.AMPLIFIED, lambda: world.verify(chain, world.d), 1)


def test_a_link_starting_before_its_parent_does_not_start_the_chain_early() -> None:
    """A delegate that dates its link before its parent's start gains no time: each link's own
    window is checked, the chain's is the latest start."""
    w = World()
    later = issue_credential(
        w.a.signer, subject=w.m.identifier, attributes=READ, now=T + 1000, ttl=3600, depth=2
    )
    parent = CredentialChain((later,), (w.a.identity.history,))
    chain = w.link(w.m, parent, w.d, now=T, expires_at=T + 2000)  # not_before T, parent T+1000
    feed = verified_feed(w.a, now=T + 500)
    refused(F.NOT_YET_VALID, lambda: w.verify(chain, w.d, now=T + 500, feed=feed), 0)
    feed = verified_feed(w.a, now=T + 1000 - SKEW)
    verified = w.verify(chain, w.d, now=T + 1000 - SKEW, feed=feed)  # the skew's edge
    assert verified.not_before == T + 1000


def test_the_skew_edges_of_a_delegated_link(world: World) -> None:
    chain = world.two()  # the last link expires at T + 300
    feed = verified_feed(world.a, now=T + 300 + SKEW - 1)
    assert world.verify(chain, world.e, now=T + 300 + SKEW - 1, feed=feed).expires_at == T + 300
    feed = verified_feed(world.a, now=T + 300 + SKEW)
    refused(F.EXPIRED, lambda: world.verify(chain, world.e, now=T + 300 + SKEW, feed=feed), 2)


def test_a_link_keeping_its_parents_depth_is_refused(world: World) -> None:
    chain = world.link(world.m, world.root, world.d, depth=3)
    refused(F.DEPTH_EXCEEDED, lambda: world.verify(chain, world.d), 1)


def test_a_chain_of_ten_credentials_is_refused_when_decoded(world: World) -> None:
    chain = world.two()
    credentials = chain.credentials
    longer = CredentialChain((*credentials, *credentials, *credentials, credentials[0]), ())
    refused(F.OVER_LIMIT, lambda: world.verify(longer, world.e))


# -- splicing -----------------------------------------------------------------------------------


def test_a_link_from_another_chain_is_refused(world: World) -> None:
    other_root = issue_credential(
        world.a.signer, subject=world.m.identifier, attributes=READ, now=T, ttl=3600, depth=3
    )
    other = world.link(world.m, CredentialChain((other_root,), world.root.histories), world.d)
    spliced = CredentialChain((world.root.credentials[0], other.credentials[1]), other.histories)
    refused(F.BROKEN_LINK, lambda: world.verify(spliced, world.d), 1)


def test_reordered_links_and_a_link_twice_are_refused(world: World) -> None:
    first, second, third = world.two().credentials
    histories = world.two().histories
    refused(
        F.MISALIGNED,
        lambda: world.verify(CredentialChain((first, third, second), histories), world.e),
        1,
    )
    refused(
        F.MISALIGNED,
        lambda: world.verify(CredentialChain((first, second, second), histories), world.e),
        2,
    )


def test_a_loop_back_to_a_delegator_is_refused(world: World) -> None:
    looped = world.link(world.e, world.two(), world.m, expires_at=T + 200)
    refused(F.CYCLE, lambda: world.verify(looped, world.m), 3)


def test_a_chain_presented_by_another_identity_is_refused(world: World) -> None:
    chain = world.two()
    for presenter in (world.m, world.d):  # a delegator presents its delegate's chain
        refused(F.WRONG_SUBJECT, functools.partial(world.verify, chain, presenter))


# -- caveats ------------------------------------------------------------------------------------


def test_a_later_link_without_caveats_drops_none(world: World) -> None:
    caveated = world.link(world.m, world.root, world.d, caveats=("context.amount < 10",))
    chain = world.link(world.d, caveated, world.e, expires_at=T + 300)
    assert world.verify(chain, world.e).caveats == ("context.amount < 10",)


# -- revocation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("what", ["link", "identity"])
def test_revoking_a_middle_link_cuts_every_link_below(world: World, what: str) -> None:
    chain = world.two()
    middle = chain.credentials[1]
    target = (
        (int(RevocationKind.CREDENTIAL), middle.hash)
        if what == "link"
        else (int(RevocationKind.IDENTITY), world.d.identifier.digest)
    )
    feed = verified_feed(world.a, [target], now=T + 10)
    refused(F.REVOKED, lambda: world.verify(chain, world.e, feed=feed), 1)
    verified = world.verify(chain, world.e)  # before the revocation: held, then checked again
    assert verified.revoked_link_in(feed) == 1


def test_another_authoritys_feed_revokes_nothing_and_is_refused(world: World) -> None:
    other = make_party(world.vault, now=T)
    replayed = verified_feed(other, [(int(RevocationKind.CREDENTIAL), b"\x00" * 32)], now=T + 10)
    refused(F.FEED_INVALID, lambda: world.verify(world.two(), world.e, feed=replayed))
    with pytest.raises(CredentialError) as caught:
        world.verify(world.two(), world.e).revoked_link_in(replayed)
    assert caught.value.reason is F.FEED_INVALID


def test_a_feed_page_rolled_back_or_forked_is_refused(world: World) -> None:
    revoked = entries(world.a, [(int(RevocationKind.CREDENTIAL), b"\x01" * 32)], at=T)
    (newer,) = pages(world.a, revoked, now=T + 20, per_page=10)
    held = verify_page(newer, authority=world.a.identifier, now=T + 20)
    (older,) = pages(world.a, revoked, now=T + 10, per_page=10)
    (empty,) = pages(world.a, [], now=T + 30, per_page=10)  # a page of a feed without it
    forked = entries(world.a, [(int(RevocationKind.CREDENTIAL), b"\x02" * 32)], at=T)
    (fork,) = pages(world.a, forked, now=T + 30, per_page=10)
    a = world.a.identifier
    refused(F.FEED_INVALID, lambda: verify_page(empty, authority=a, now=T + 30, previous=held))
    refused(F.FEED_INVALID, lambda: verify_page(fork, authority=a, now=T + 30, previous=held))
    # the same entries signed earlier: a replayed older snapshot cannot follow the newer one
    (again,) = pages(world.a, revoked, now=T + 10, per_page=10, start=1)
    refused(F.FEED_ROLLBACK, lambda: verify_page(again, authority=a, now=T + 30, previous=held))
    assert verify_page(older, authority=a, now=T + 30).count == 1  # alone it is a feed


# -- a rotated-away authority key -----------------------------------------------------------------


def rotated_away(world: World) -> tuple[Party, VerifiedFeed]:
    """A after its rotation (a new signing key under its second change), and its feed saying
    so (a supersession of its own history, signed under the new one)."""
    primary, rotated, following = rotate_identity(
        world.vault,
        world.a.identity,
        world.a.primary,
        world.a.next_primary,
        now=T + 5,
        valid_for=86_400,
    )
    now_a = Party(rotated, primary, signer_as(world.vault, primary, rotated, now=T + 5), following)
    told = superseded(
        0, now_a.identifier, now_a.identifier, 2, rotated.changes[-1].change_hash, at=T
    )
    (page,) = pages(now_a, [told], now=T + 10, per_page=10)
    return now_a, verify_page(page, authority=world.a.identifier, now=T + 10)


def test_a_credential_from_a_rotated_away_authority_key_is_refused(world: World) -> None:
    now_a, feed = rotated_away(world)
    stale = issue_credential(  # the old signing key, after the rotation (a stolen backup's)
        world.a.signer, subject=world.e.identifier, attributes=READ, now=T + 6, ttl=600, depth=0
    )
    with_new = CredentialChain((stale,), (now_a.identity.history,))
    refused(F.ATTESTATION_INVALID, lambda: world.verify(with_new, world.e), 0)
    with_old = CredentialChain((stale,), (world.a.identity.history,))
    refused(F.SUPERSEDED, lambda: world.verify(with_old, world.e, feed=feed), 0)


def test_a_vc_from_a_rotated_away_authority_key_is_refused(world: World) -> None:
    now_a, feed = rotated_away(world)
    stale = export_credential_vc(
        world.a.signer,
        credential_id=bytes(16),
        subject=world.e.identifier,
        attributes=READ,
        valid_from=T + 6,
        valid_until=T + 600,
        now=T + 6,
    )
    policy = TrustPolicy(frozenset({world.a.identifier}))

    def verify(issuer: VerifiedIdentity) -> object:
        feeds = {world.a.identifier: feed}
        return verify_troth_vc(stale, policy=policy, issuer=issuer, feeds=feeds, now=T + 10)

    refused(F.ATTESTATION_INVALID, lambda: verify(now_a.identity))
    refused(F.SUPERSEDED, lambda: verify(world.a.identity))


# -- hostile bytes --------------------------------------------------------------------------------


def test_a_non_canonical_body_signed_by_a_delegator_is_refused(world: World) -> None:
    chain = world.link(world.m, world.root, world.d)
    body = chain.credentials[1].body
    assert CredentialBody.decode(body).depth == 2
    # depth 2 then the delegation [parent, purpose, caveats], the depth re-encoded in two
    # bytes (0x18 0x02): the same value, another hash
    at = body.rindex(bytes([0x02, 0x83, 0x58, 0x20]))
    longer = body[:at] + bytes([0x18, 0x02]) + body[at + 1 :]
    signed = SignedCredential(longer, world.m.signer.sign(longer), world.m.signer.attestation)
    spliced = CredentialChain((chain.credentials[0], signed), chain.histories)
    refused(F.MALFORMED, lambda: world.verify(spliced, world.d))


def test_a_deeply_nested_chain_is_refused_unread(world: World) -> None:
    deep = bytes([0x81]) * 50_000 + bytes([0x01])
    refused(F.OVER_LIMIT, lambda: world.verify(deep, world.d))


# -- W3C VCs: a proof over other bytes ---------------------------------------------------------


def test_a_vc_whose_attribute_is_renormalised_no_longer_verifies() -> None:
    w = VcWorld()
    value = "caf\u00e9"  # NFC
    document = dict(w.vc, credentialSubject={**w.vc["credentialSubject"]})
    document["credentialSubject"]["attributes"] = {"orders.access": value}
    signed = w.resigned(document)
    assert w.verify(signed).attributes.values_of("orders.access") == {value}
    decomposed = json.loads(json.dumps(signed))
    decomposed["credentialSubject"]["attributes"] = {
        "orders.access": unicodedata.normalize("NFD", value)
    }
    refused(F.BAD_SIGNATURE, lambda: w.verify(decomposed))


def test_a_vc_with_a_duplicate_member_is_refused_before_its_proof() -> None:
    """A first `credentialSubject` another reader takes, the signed one last (Python's json
    takes the last): troth's reader refuses duplicate names (I-JSON)."""
    w = VcWorld()
    text = json.dumps(w.vc)
    forged = '{"credentialSubject": {"id": "did:troth:x", "attributes": {}}, ' + text[1:]
    assert json.loads(forged)["credentialSubject"] == w.vc["credentialSubject"]
    with pytest.raises(DecodeError, match="duplicate member name"):
        load_json(forged.encode(), max_bytes=1 << 16, what="VC")


@pytest.mark.parametrize(
    ("field", "value"),
    [(6, -1), (7, -1), (8, -5), (9, -1)],  # created_at, not_before, expires_at, depth
)
def test_a_negative_time_or_depth_signed_by_a_delegator_is_refused(
    world: World, field: int, value: int
) -> None:
    chain = world.link(world.m, world.root, world.d)
    fields = cbor.decode(chain.credentials[1].body, max_bytes=1 << 14)
    fields[field] = value
    body = cbor.encode(fields)
    signed = SignedCredential(body, world.m.signer.sign(body), world.m.signer.attestation)
    hostile = CredentialChain((chain.credentials[0], signed), chain.histories)
    refused(F.MALFORMED, lambda: world.verify(hostile, world.d))


def test_a_time_past_what_a_body_carries_is_refused_when_made(world: World) -> None:
    # typed: the signer's primary key is long past its valid_until then (ISSUER_INVALID since
    # review 75g, delegation2 3; before, the window ending before it starts, MALFORMED)
    refused(
        F.ISSUER_INVALID,
        lambda: issue_credential(
            world.a.signer,
            subject=world.m.identifier,
            attributes=READ,
            now=2**64 - 10,
            ttl=100,
            depth=1,
        ),
    )


def test_a_vc_serialised_otherwise_says_the_same_and_verifies() -> None:
    """JCS makes the proof independent of member order, whitespace and escapes: another
    writer's bytes of the same document verify, and mean what the issuer signed."""
    w = VcWorld()
    text = json.dumps(w.vc, sort_keys=True, indent=3, ensure_ascii=True).replace(
        '"VerifiableCredential"', '"\\u0056erifiableCredential"'
    )
    document = load_json(text.encode(), max_bytes=1 << 16, what="VC")
    verified = w.verify(document)
    assert verified.attributes == w.verify().attributes
    assert verified.credential_hash == w.hash


def test_a_held_chain_whose_middle_link_is_revoked_is_shown_no_more(
    world: World, tmp_path: Path
) -> None:
    """A node holding A -> M -> D -> (its identity) stops handing the chain out once the feed
    it holds revokes M's link to D, and delegates nothing further from it."""
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        me = node.identities.create(now=T, name="me")
        chain = world.link(
            world.d, world.link(world.m, world.root, world.d), me.identifier, expires_at=T + 300
        ).encode()
        node.wallet.hold("me", chain, now=T + 10)
        assert node.wallet.best("me", now=T + 10) == chain
        middle = CredentialChain.decode(chain).credentials[1].hash
        (page,) = pages(
            world.a,
            entries(world.a, [(int(RevocationKind.CREDENTIAL), middle)], at=T),
            now=T + 20,
            per_page=10,
        )
        node.wallet.update_feed(page, authority=world.a.identifier, now=T + 20)
        with pytest.raises(NotFound):
            node.wallet.best("me", now=T + 20)
        with pytest.raises(NotFound):
            node.wallet.delegate(
                "me", to=world.e.identifier, attributes=READ, now=T + 20, ttl=60, purpose="p"
            )
