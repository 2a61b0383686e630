"""Chain verification: every rejection path, amplification refused at issue AND verify time,
and the exact edges of each time window (fake clock)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest

from tests.support.feeds import entries, pages
from tests.support.parties import Party, make_party, verified_feed
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialBody,
    CredentialChain,
    Delegation,
    RevocationEntry,
    RevocationKind,
    SignedCredential,
    Supersession,
    TrustPolicy,
    VerifiedCredential,
    VerifiedFeed,
    delegate,
    issue_credential,
    verify_pages,
)
from troth.encoding import cbor
from troth.errors import CredentialError, CredentialFailure
from troth.identity import Identifier, VerifiedIdentity, rotate_identity
from troth.vault import SoftwareVault

F = CredentialFailure
T = 1_780_000_000
SKEW = 60
ROOT_ATTRS = Attributes({"orders.access": frozenset({"read", "write"}), "orders.customer": "4471"})
READ = Attributes({"orders.access": "read", "orders.customer": "4471"})


@dataclass
class World:
    vault: SoftwareVault
    authority: Party
    alice: Party  # holds the authority's credential
    bob: Party
    carol: Party
    root: CredentialChain
    verifier: ChainVerifier
    feed: VerifiedFeed

    def feeds(self, feed: VerifiedFeed | None = None) -> dict[Identifier, VerifiedFeed]:
        return {self.authority.identifier: feed or self.feed}

    def feed_at(self, now: int) -> None:
        """A fresh (empty) feed as of `now`."""
        self.feed = verified_feed(self.authority, now=now)

    def verify(
        self, chain: CredentialChain | bytes, presenter: Party, now: int = T + 10
    ) -> VerifiedCredential:
        data = chain if isinstance(chain, bytes) else chain.encode()
        return self.verifier.verify(
            data, presenter=presenter.identifier, feeds=self.feeds(), now=now
        )


@pytest.fixture
def world() -> World:
    vault = SoftwareVault()
    authority, alice, bob, carol = (make_party(vault, now=T) for _ in range(4))
    root = CredentialChain(
        (
            issue_credential(
                authority.signer,
                subject=alice.identifier,
                attributes=ROOT_ATTRS,
                now=T,
                ttl=3600,
                depth=2,
            ),
        ),
        (authority.identity.history,),
    )
    feed = verified_feed(authority, now=T + 5)
    verifier = ChainVerifier(TrustPolicy(frozenset({authority.identifier}), max_clock_skew=SKEW))
    return World(vault, authority, alice, bob, carol, root, verifier, feed)


def rejects(
    call: Callable[[], object], reason: CredentialFailure, link: int | None = None
) -> CredentialError:
    with pytest.raises(CredentialError) as caught:
        call()
    assert caught.value.reason is reason, caught.value
    if link is not None:
        assert caught.value.link == link, caught.value
    return caught.value


def to_bob(world: World, **changes: object) -> CredentialChain:
    args: dict[str, object] = {
        "subject": world.bob.identifier,
        "attributes": READ,
        "now": T,
        "ttl": 1800,
        "purpose": "resolve complaint 123",
    }
    args.update(changes)
    return delegate(world.alice.signer, world.root, **args)  # type: ignore[arg-type]


def hand_on(frm: Party, chain: CredentialChain, to: Party, **changes: object) -> CredentialChain:
    """`frm` delegates READ from `chain` to `to` for 60 s (keyword arguments override)."""
    args: dict[str, object] = {"attributes": READ, "now": T, "ttl": 60, "purpose": "p"}
    args.update(changes)
    return delegate(frm.signer, chain, subject=to.identifier, **args)  # type: ignore[arg-type]


def forge(signer_party: Party, chain: CredentialChain, body: CredentialBody) -> CredentialChain:
    """Append a hand-built link signed by `signer_party` (a malicious delegator)."""
    encoded = body.encode()
    link = SignedCredential(
        encoded, signer_party.signer.sign(encoded), signer_party.signer.attestation
    )
    return chain.extended(link, signer_party.identity.history)


def link_body(
    world: World, parent: CredentialChain, issuer: Party, **changes: object
) -> CredentialBody:
    fields: dict[str, object] = {
        "id": os.urandom(16),
        "subject": world.bob.identifier,
        "issuer": issuer.identifier,
        "attributes": READ,
        "created_at": T,
        "not_before": T,
        "expires_at": T + 1800,
        "depth": 1,
        "delegation": Delegation(parent.credentials[-1].hash, "p", ()),
    }
    fields.update(changes)
    return CredentialBody(**fields)  # type: ignore[arg-type]


# -- success -------------------------------------------------------------------------------------


def test_root_and_two_links(world: World) -> None:
    result = world.verify(world.root, world.alice)
    chain = to_bob(world, caveats=['context.complaint == "123"'])
    chain = delegate(
        world.bob.signer,
        chain,
        subject=world.carol.identifier,
        attributes=Attributes({"orders.customer": "4471"}),
        now=T + 1,
        ttl=600,
        purpose="look up history",
        caveats=['resource.kind == "history"'],
    )
    result = world.verify(chain, world.carol)
    assert result.actor == world.carol.identifier
    assert [(link.issuer, link.subject) for link in result.links] == [
        (world.authority.identifier, world.alice.identifier),
        (world.alice.identifier, world.bob.identifier),
        (world.bob.identifier, world.carol.identifier),
    ]
    assert result.attributes == Attributes({"orders.customer": "4471"})
    assert result.caveats == ('context.complaint == "123"', 'resource.kind == "history"')
    assert result.not_before == T + 1
    assert result.expires_at == T + 601
    assert result.links[2].purpose == "look up history"


# -- trust, identity, signatures ------------------------------------------------------------------


def test_untrusted_root(world: World) -> None:
    other = ChainVerifier(TrustPolicy(frozenset({world.bob.identifier})))
    rejects(
        lambda: other.verify(
            world.root.encode(), presenter=world.alice.identifier, feeds=world.feeds(), now=T
        ),
        F.UNTRUSTED_ISSUER,
        0,
    )
    with pytest.raises(ValueError, match="trust anchor"):
        TrustPolicy(frozenset())


def test_missing_issuer_history(world: World) -> None:
    chain = to_bob(world)
    stripped = CredentialChain(chain.credentials, chain.histories[:1])
    rejects(lambda: world.verify(stripped, world.bob), F.MISSING_HISTORY, 1)


def test_issuer_history_tampered_or_duplicated(world: World) -> None:
    bad = bytearray(world.authority.identity.history)
    bad[-5] ^= 1
    chain = CredentialChain(world.root.credentials, (bytes(bad),))
    rejects(lambda: world.verify(chain, world.alice), F.ISSUER_INVALID)
    twice = CredentialChain(world.root.credentials, world.root.histories * 2)
    rejects(lambda: world.verify(twice, world.alice), F.MALFORMED)


def test_tampered_body_and_wrong_key(world: World) -> None:
    signed = world.root.credentials[0]
    body = bytearray(signed.body)
    body[body.index(b"4471")] ^= 0x01  # "5471": still valid CBOR, no longer what was signed
    tampered = CredentialChain((replace(signed, body=bytes(body)),), world.root.histories)
    rejects(lambda: world.verify(tampered, world.alice), F.BAD_SIGNATURE, 0)
    forged_sig = world.bob.signer.sign(signed.body)
    forged = CredentialChain((replace(signed, signature=forged_sig),), world.root.histories)
    rejects(lambda: world.verify(forged, world.alice), F.BAD_SIGNATURE, 0)


def test_attestation_of_another_identity(world: World) -> None:
    signed = world.root.credentials[0]
    swapped = replace(signed, attestation=world.bob.signer.attestation)
    chain = CredentialChain((swapped,), world.root.histories)
    rejects(lambda: world.verify(chain, world.alice), F.ATTESTATION_INVALID, 0)


def rotate(world: World, party: Party) -> VerifiedIdentity:
    """`party`'s history with one more change (revealing its committed next key)."""
    _, rotated, _ = rotate_identity(
        world.vault,
        party.identity,
        party.primary,
        party.next_primary,
        now=T + 1,
        valid_for=10**8,
    )
    return rotated


def test_issuer_rotation_retires_its_credentials(world: World) -> None:
    rotated = rotate(world, world.authority)
    chain = CredentialChain(world.root.credentials, (rotated.history,))
    rejects(lambda: world.verify(chain, world.alice), F.ATTESTATION_INVALID, 0)


def test_credential_cannot_outlive_signing_key(world: World) -> None:
    short = make_party(world.vault, now=T, signing_ttl=100)
    verifier = ChainVerifier(TrustPolicy(frozenset({short.identifier})))
    body = CredentialBody(
        os.urandom(16), world.alice.identifier, short.identifier, READ, T, T, T + 3600, 1, None
    )
    chain = forge(short, CredentialChain((), ()), body)
    rejects(
        lambda: verifier.verify_structure(chain.encode(), now=T),
        F.ATTESTATION_INVALID,
        0,
    )
    issued = issue_credential(
        short.signer, subject=world.alice.identifier, attributes=READ, now=T, ttl=3600, depth=1
    )
    assert CredentialBody.decode(issued.body).expires_at == T + 100  # capped at issue time


def test_wrong_presenter(world: World) -> None:
    rejects(lambda: world.verify(world.root, world.bob), F.WRONG_SUBJECT)


# -- structure ------------------------------------------------------------------------------------


def test_misaligned_link(world: World) -> None:
    body = link_body(world, world.root, world.carol)  # carol does not hold the root
    rejects(lambda: world.verify(forge(world.carol, world.root, body), world.bob), F.MISALIGNED, 1)
    rejects(lambda: hand_on(world.carol, world.root, world.bob), F.MISALIGNED)


def test_broken_parent_hash(world: World) -> None:
    body = link_body(world, world.root, world.alice, delegation=Delegation(b"\x00" * 32, "p", ()))
    rejects(lambda: world.verify(forge(world.alice, world.root, body), world.bob), F.BROKEN_LINK, 1)


def test_delegation_fields_in_wrong_place(world: World) -> None:
    body = link_body(world, world.root, world.alice, delegation=None)
    rejects(
        lambda: world.verify(forge(world.alice, world.root, body), world.bob), F.NOT_A_DELEGATION, 1
    )
    root_body = CredentialBody(
        os.urandom(16),
        world.alice.identifier,
        world.authority.identifier,
        READ,
        T,
        T,
        T + 60,
        1,
        Delegation(b"\x01" * 32, "p", ()),
    )
    chain = forge(world.authority, CredentialChain((), ()), root_body)
    rejects(lambda: world.verify(chain, world.alice), F.NOT_A_DELEGATION, 0)


def test_reordered_links(world: World) -> None:
    chain = hand_on(world.bob, to_bob(world), world.carol)
    swapped = CredentialChain(
        (chain.credentials[0], chain.credentials[2], chain.credentials[1]), chain.histories
    )
    rejects(lambda: world.verify(swapped, world.carol), F.MISALIGNED, 1)
    reversed_chain = CredentialChain(tuple(reversed(chain.credentials)), chain.histories)
    rejects(lambda: world.verify(reversed_chain, world.carol), F.UNTRUSTED_ISSUER, 0)


# -- amplification: refused when issuing and when verifying ---------------------------------------


@pytest.mark.parametrize(
    ("attributes", "what"),
    [
        (Attributes({"orders.refund": "yes"}), "an attribute not held"),
        (Attributes({"orders.access": frozenset({"read", "write", "delete"})}), "a wider set"),
        (Attributes({"orders.customer": "9999"}), "another value"),
        (Attributes({"troth.role": "admin"}), "a reserved attribute not held"),
    ],
)
def test_attribute_amplification(world: World, attributes: Attributes, what: str) -> None:
    rejects(lambda: to_bob(world, attributes=attributes), F.AMPLIFIED)
    body = link_body(world, world.root, world.alice, attributes=attributes)
    rejects(lambda: world.verify(forge(world.alice, world.root, body), world.bob), F.AMPLIFIED, 1)


def test_set_narrowing_is_allowed(world: World) -> None:
    for attributes in (
        Attributes({"orders.access": "write"}),
        Attributes({"orders.access": frozenset({"read"})}),
        Attributes({}),
    ):
        world.verify(to_bob(world, attributes=attributes), world.bob)


def test_expiry_amplification(world: World) -> None:
    rejects(lambda: to_bob(world, ttl=3601), F.AMPLIFIED)
    body = link_body(world, world.root, world.alice, expires_at=T + 3601)
    rejects(lambda: world.verify(forge(world.alice, world.root, body), world.bob), F.AMPLIFIED, 1)


def test_depth_plus_one(world: World) -> None:
    rejects(
        lambda: to_bob(world, depth=2), F.AMPLIFIED
    )  # the root allows 2: a link may allow at most 1
    body = link_body(world, world.root, world.alice, depth=2)
    rejects(
        lambda: world.verify(forge(world.alice, world.root, body), world.bob), F.DEPTH_EXCEEDED, 1
    )


def test_depth_exhausted(world: World) -> None:
    chain = to_bob(world, depth=0)
    rejects(lambda: hand_on(world.bob, chain, world.carol), F.DEPTH_EXCEEDED)
    body = link_body(world, chain, world.bob, subject=world.carol.identifier, depth=0)
    rejects(lambda: world.verify(forge(world.bob, chain, body), world.carol), F.DEPTH_EXCEEDED, 2)


def test_global_depth_limit(world: World) -> None:
    from troth import limits

    parties = [make_party(world.vault, now=T) for _ in range(limits.MAX_DELEGATION_LINKS + 2)]
    deep_root = CredentialChain(
        (
            issue_credential(
                world.authority.signer,
                subject=parties[0].identifier,
                attributes=READ,
                now=T,
                ttl=3600,
                depth=limits.MAX_DELEGATION_LINKS,
            ),
        ),
        (world.authority.identity.history,),
    )
    chain = deep_root
    for index in range(limits.MAX_DELEGATION_LINKS):
        chain = hand_on(parties[index], chain, parties[index + 1])
    world.verify(chain, parties[limits.MAX_DELEGATION_LINKS])
    with pytest.raises(CredentialError) as raised:
        hand_on(parties[-2], chain, parties[-1])
    assert raised.value.reason is CredentialFailure.DEPTH_EXCEEDED


def test_cycle(world: World) -> None:
    chain = to_bob(world)
    back_to_alice = link_body(world, chain, world.bob, subject=world.alice.identifier, depth=0)
    rejects(lambda: world.verify(forge(world.bob, chain, back_to_alice), world.alice), F.CYCLE, 2)
    rejects(lambda: hand_on(world.alice, world.root, world.alice), F.CYCLE)


# -- time ----------------------------------------------------------------------------------------


def test_window_edges_with_skew(world: World) -> None:
    world.feed_at(T - SKEW - 1)
    world.verify(world.root, world.alice, now=T - SKEW)  # not_before - skew: accepted
    rejects(lambda: world.verify(world.root, world.alice, now=T - SKEW - 1), F.NOT_YET_VALID, 0)
    world.feed_at(T + 3600)
    world.verify(world.root, world.alice, now=T + 3600 + SKEW - 1)  # last accepted second
    rejects(lambda: world.verify(world.root, world.alice, now=T + 3600 + SKEW), F.EXPIRED, 0)


def test_effective_window_is_the_intersection(world: World) -> None:
    chain = to_bob(world, now=T + 100, ttl=200)
    result = world.verify(chain, world.bob, now=T + 150)
    assert (result.not_before, result.expires_at) == (T + 100, T + 300)
    world.feed_at(T + 300)
    rejects(lambda: world.verify(chain, world.bob, now=T + 300 + SKEW), F.EXPIRED, 1)


# -- revocation ----------------------------------------------------------------------------------


def test_revoked_link_kills_descendants_not_siblings(world: World) -> None:
    to_b = to_bob(world)
    below = hand_on(world.bob, to_b, world.carol)
    sibling = to_bob(world, subject=world.carol.identifier)
    middle = to_b.credentials[1].hash
    feed = verified_feed(world.authority, [(1, middle)], now=T + 6)
    world.feed = feed
    rejects(lambda: world.verify(below, world.carol), F.REVOKED, 1)
    rejects(lambda: world.verify(to_b, world.bob), F.REVOKED, 1)
    world.verify(sibling, world.carol)
    world.verify(world.root, world.alice)


def test_each_feed_view_counts_only_its_own_revocations(world: World) -> None:
    """A holder that kept an older view of the feed (the index is shared and grows in place)
    does not see a later revocation; the newer view refuses the chain, whichever is asked."""
    to_b = to_bob(world)
    feed = entries(world.authority, [(1, bytes(32)), (1, to_b.credentials[1].hash)], at=T + 6)
    (first,) = pages(world.authority, feed[:1], now=T + 6, per_page=1)
    (second,) = pages(world.authority, feed, now=T + 6, per_page=1, start=1)
    older = verify_pages([first], authority=world.authority.identifier, now=T + 6)
    newer = verify_pages([second], authority=world.authority.identifier, now=T + 6, previous=older)
    world.feed = newer
    rejects(lambda: world.verify(to_b, world.bob), F.REVOKED, 1)
    world.feed = older
    world.verify(to_b, world.bob)
    world.feed = newer
    rejects(lambda: world.verify(to_b, world.bob), F.REVOKED, 1)


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_revoked_identity(world: World, who: str) -> None:
    chain = to_bob(world)
    party = getattr(world, who)
    world.feed = verified_feed(world.authority, [(2, party.identifier.digest)], now=T + 6)
    rejects(lambda: world.verify(chain, world.bob), F.REVOKED)


def test_no_feed_and_stale_feed(world: World) -> None:
    data = world.root.encode()
    rejects(
        lambda: world.verifier.verify(data, presenter=world.alice.identifier, feeds={}, now=T + 10),
        F.NO_FEED,
    )
    rejects(lambda: world.verify(world.root, world.alice, now=T + 5 + 301), F.STALE_FEED)


def test_cache_never_skips_state_checks(world: World) -> None:
    data = world.root.encode()
    world.verify(data, world.alice)
    world.verify(data, world.alice)  # cached
    rejects(lambda: world.verify(data, world.bob), F.WRONG_SUBJECT)
    world.feed_at(T + 3600)
    rejects(lambda: world.verify(data, world.alice, now=T + 3600 + SKEW), F.EXPIRED)
    world.feed = verified_feed(world.authority, [(1, world.root.credentials[0].hash)], now=T + 6)
    rejects(lambda: world.verify(data, world.alice), F.REVOKED, 0)


# -- encodings -----------------------------------------------------------------------------------


def test_malformed_chains(world: World) -> None:
    data = world.root.encode()
    rejects(lambda: world.verify(b"\xff", world.alice), F.MALFORMED)
    rejects(lambda: world.verify(data + b"\x00", world.alice), F.TRAILING_BYTES)
    relabelled = cbor.decode(data)
    relabelled[0] = "troth.credential.chains"
    rejects(lambda: world.verify(cbor.encode(relabelled), world.alice), F.UNKNOWN_TYPE)
    relabelled[0], relabelled[1] = "troth.credential.chain", 2
    rejects(lambda: world.verify(cbor.encode(relabelled), world.alice), F.UNKNOWN_VERSION)
    empty = cbor.encode(["troth.credential.chain", 1, [], []])
    rejects(lambda: world.verify(empty, world.alice), F.MALFORMED)


# -- superseded histories and misfiled feeds (issue 7) --------------------------------------------


def superseding(world: World, rotated: VerifiedIdentity) -> VerifiedFeed:
    """The authority's feed saying `rotated` supersedes its identity's older histories."""
    who = rotated.identifier
    entry = RevocationEntry(
        0,
        RevocationKind.SUPERSEDED,
        who.digest,
        who,
        T,
        "",
        Supersession(len(rotated.changes), rotated.current_change_hash),
    )
    return verify_pages(
        pages(world.authority, [entry], now=T + 6, per_page=1),
        authority=world.authority.identifier,
        now=T + 6,
    )


def test_superseded_issuer_and_presenter_histories_are_refused(world: World) -> None:
    """A stateless verifier with a fresh feed refuses a stolen backup's older history, as the
    issuer of a link and as the presenter, and accepts the current one."""
    rotated = rotate(world, world.alice)
    old_delegation = to_bob(world)  # signed under alice's first change
    world.feed = superseding(world, rotated)
    rejects(lambda: world.verify(old_delegation, world.bob), F.SUPERSEDED, 1)
    data = world.root.encode()
    verify = world.verifier.verify
    verify(data, presenter=rotated, feeds=world.feeds(), now=T + 10)
    verify(data, presenter=world.alice.identifier, feeds=world.feeds(), now=T + 10)
    rejects(
        lambda: verify(data, presenter=world.alice.identity, feeds=world.feeds(), now=T + 10),
        F.SUPERSEDED,
    )
    rejects(
        lambda: verify(data, presenter=world.bob.identity, feeds=world.feeds(), now=T + 10),
        F.WRONG_SUBJECT,
    )


def test_a_feed_filed_under_another_authority_is_refused(world: World) -> None:
    other = verified_feed(world.bob, now=T + 5)
    data = world.root.encode()
    for feeds in (
        {world.authority.identifier: other},
        {world.authority.identifier: world.feed, world.carol.identifier: other},
    ):
        rejects(
            lambda feeds=feeds: world.verifier.verify(  # type: ignore[misc]
                data, presenter=world.alice.identifier, feeds=feeds, now=T + 10
            ),
            F.FEED_INVALID,
        )
