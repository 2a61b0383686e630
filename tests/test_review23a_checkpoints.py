"""Review 23a, checkpoints: a co-trusted authority's feed attests a checkpointed history of
another authority's member (docs/formats.md, "Checkpointed histories" and "Whose word counts
on an identity").

A checkpointed history's first change is not linked to anything a verifier can check: its
checkpoint's authority vouches for it. A verifier trusting acme and globex takes globex's word
on a history of acme's member alice presented from change 1 — a change globex made up, with a
key it holds — and then acme's chain to alice counts for whoever holds that key: globex (or a
thief of its feed key) delegates as alice under her acme credential, and presents her acme
credential as her. Acme's feed, which judges acme's chains, never named that change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from tests.support.channels import MEMBER, T
from tests.support.feeds import pages
from tests.support.parties import Party, make_party, signer_as
from tests.test_trust_scope import NOW, Two, make_two
from troth.credentials import (
    ChainVerifier,
    CredentialChain,
    RevocationEntry,
    RevocationKind,
    Supersession,
    TrustPolicy,
    VerifiedCredential,
    delegate,
    verify_page,
)
from troth.credentials.revocation_held import feed_checkpoints
from troth.crypto import KeyType, sha256
from troth.errors import CredentialError, CredentialFailure
from troth.identity import (
    ChangeBody,
    Checkpoint,
    Identifier,
    SignedChange,
    Signer,
    VerifiedIdentity,
    encode_history,
    rotate_identity,
    verify_history,
)
from troth.vault import KeyHandle, KeyPurpose

_F = CredentialFailure
YEAR = 365 * 86_400


@dataclass(frozen=True)
class Forged:
    """A made-up history of someone else's identifier: a signer as it, and its primary key."""

    signer: Signer
    primary: KeyHandle
    page: bytes  # globex's feed page naming the made-up change

    @property
    def identity(self) -> VerifiedIdentity:
        return self.signer.identity


def forged_change(two: Two, identifier: Identifier, index: int, previous: bytes) -> Forged:
    """Globex's made-up change `index` of `identifier` (its own key; previous-key signature
    zeros: a checkpointed history's first link is the checkpoint's word, never checked), the
    supersession in globex's feed that names it, and a signer as that history."""
    vault = two.vault
    primary = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    body = ChangeBody(
        index, previous, vault.public_key(primary), os.urandom(32), T, T, T + YEAR
    ).encode()
    history = encode_history(
        [SignedChange(body, vault.sign(primary, body), bytes(64))],
        Checkpoint(identifier.digest, two.globex.identifier.digest, index),
    )
    page = announce(two, two.globex, identifier, index + 1, sha256(body), by=two.globex.identifier)
    checkpoints = feed_checkpoints(two.feeds, now=NOW, max_staleness=10**6)
    forged = verify_history(history, now=NOW, checkpoints=checkpoints)
    assert forged.identifier == identifier  # globex's word made it alice's, for this verifier
    return Forged(signer_for(two, primary, forged), primary, page)


def announce(
    two: Two,
    authority: Party,
    identifier: Identifier,
    changes: int,
    change_hash: bytes,
    *,
    by: Identifier,
) -> bytes:
    """`authority`'s feed page superseding (an entry `by` whom) `identifier`'s histories
    shorter than `changes` (its newest change `change_hash`), held as its feed in
    `two.feeds`; the page."""
    entry = RevocationEntry(
        0,
        RevocationKind.SUPERSEDED,
        identifier.digest,
        by,
        T,
        "",
        Supersession(changes, change_hash),
    )
    (page,) = pages(authority, [entry], now=T, per_page=1)
    two.feeds[authority.identifier] = verify_page(page, authority=authority.identifier, now=T)
    return page


def signer_for(two: Two, primary: KeyHandle, identity: VerifiedIdentity) -> Signer:
    """A signer as `identity`: a signing key attested by its primary key `primary`."""
    return signer_as(two.vault, primary, identity, now=T)


def trusting_both(two: Two) -> ChainVerifier:
    anchors = frozenset({two.acme.identifier, two.globex.identifier})
    return ChainVerifier(TrustPolicy(anchors, max_feed_staleness=10**6))


def verify_as(
    two: Two, chain: bytes, presenter: Identifier | VerifiedIdentity
) -> VerifiedCredential:
    return trusting_both(two).verify(chain, presenter=presenter, feeds=two.feeds, now=NOW)


@pytest.fixture
def two() -> Two:
    return make_two()


def test_a_co_trusted_authority_cannot_delegate_as_anothers_member(two: Two) -> None:
    """Globex makes up change 1 of alice (an acme member with one change, so acme's feed names
    none of hers) and signs, as alice, a delegation below her real acme credential to mallory.
    Acme's chain must not verify with a history of alice only globex vouches for."""
    alice = two.alice.identifier
    as_alice = forged_change(two, alice, 1, alice.digest).signer
    mallory = make_party(two.vault, now=T).identifier
    chain = delegate(
        as_alice,
        CredentialChain.decode(two.chain(two.acme)),
        subject=mallory,
        attributes=MEMBER,
        now=T,
        ttl=600,
        purpose="made up by globex",
    ).encode()
    with pytest.raises(CredentialError) as caught:
        verify_as(two, chain, mallory)
    assert caught.value.reason is _F.ISSUER_INVALID
    assert caught.value.link == 1
    assert "acme" in caught.value.detail or str(two.acme.identifier) in caught.value.detail


def test_a_co_trusted_authority_cannot_present_anothers_members_credential(two: Two) -> None:
    """Alice's acme chain is shown on every channel she opens (not a secret). Globex presents
    it with a history of alice from its made-up change 1: acme's chain must not count for a
    presenter whose history acme's feed does not bind."""
    alice = two.alice.identifier
    forged = forged_change(two, alice, 1, alice.digest).identity
    with pytest.raises(CredentialError) as caught:
        verify_as(two, two.chain(two.acme), forged)
    assert caught.value.reason is _F.WRONG_SUBJECT


def test_alices_own_history_still_presents_her_credential(two: Two) -> None:
    """The control: alice's real (whole) history presents her acme chain, globex's forgery
    in its feed or not."""
    forged_change(two, two.alice.identifier, 1, two.alice.identifier.digest)
    verified = verify_as(two, two.chain(two.acme), two.alice.party.identity)
    assert verified.actor == two.alice.identifier


def test_a_made_up_change_right_after_the_one_acme_names_does_not_count(two: Two) -> None:
    """The variant where acme's feed does name alice's rotation (change 1): globex makes up
    change 2, naming acme's change 1 as its previous (a checkpointed first change's link is
    never checked). That history passes acme's supersession (it starts right after the change
    acme names, and names it) but holds none of the changes acme names: refused."""
    alice = two.alice.party
    rotated = rotate_identity(
        two.vault, alice.identity, alice.primary, alice.next_primary, now=T, valid_for=YEAR
    ).identity
    announce(two, two.acme, alice.identifier, 2, rotated.current_change_hash, by=alice.identifier)
    forged = forged_change(two, alice.identifier, 2, rotated.current_change_hash).identity
    with pytest.raises(CredentialError) as caught:
        verify_as(two, two.chain(two.acme), forged)
    assert caught.value.reason is _F.WRONG_SUBJECT
    assert verify_as(two, two.chain(two.acme), rotated).actor == alice.identifier
