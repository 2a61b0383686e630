"""Review 38d, memory: what a verifier with no store of its own (`ChainVerifier` without
`known`, as the public `troth.Verifier` builds it) keeps of the histories it verified.

Alice, a member of acme that may delegate, learns that her current primary key leaked (the
thief holds k0, not her committed next key) and rotates: her delegation to bob carries her new
history [c0, c1]. Acme's feed does not name her rotation yet (her node announces it and the
verifier's copy of the feed syncs within its staleness). The thief, holding k0, attests a
signing key of its own under c0 and delegates to mallory with her history [c0].
"""

from __future__ import annotations

import pytest

from tests.support.parties import Party, make_party, signer_as
from tests.test_trust_scope import feed_of
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    TrustPolicy,
    delegate,
    issue_credential,
)
from troth.errors import CredentialError, CredentialFailure
from troth.identity import Identifier, rotate_identity
from troth.vault import SoftwareVault

T = 1_780_000_000
ORDERS = Attributes({"orders.access": "write"})


class World:
    """Acme, alice (its member, may delegate) rotated at T + 10, bob and mallory."""

    def __init__(self) -> None:
        self.vault = vault = SoftwareVault()
        self.acme = make_party(vault, now=T)
        alice = make_party(vault, now=T)
        self.bob = make_party(vault, now=T).identifier
        self.mallory = make_party(vault, now=T).identifier
        root = issue_credential(
            self.acme.signer,
            subject=alice.identifier,
            attributes=ORDERS,
            now=T,
            ttl=86_400,
            depth=2,
        )
        self.root = CredentialChain((root,), (self.acme.identity.history,))
        self.stolen = alice  # what the thief holds: k0 (and the history ending at c0)
        held = rotate_identity(
            vault, alice.identity, alice.primary, alice.next_primary, now=T + 10, valid_for=86_400
        )
        self.alice = Party(
            held.identity,
            held.primary,
            signer_as(vault, held.primary, held.identity, now=T + 10),
            held.next_key,
        )
        self.feeds = {self.acme.identifier: feed_of(self.acme)}  # names no rotation yet
        self.verifier = ChainVerifier(TrustPolicy(frozenset({self.acme.identifier})))

    def delegated(self, by: Party, to: Identifier) -> bytes:
        # within the thief's key too (valid T+5..T+605, review 40a): `delegate` refuses a ttl
        # past its delegator's primary key (review 75l, issuance 1)
        chain = delegate(
            by.signer, self.root, subject=to, attributes=ORDERS, now=T + 20, ttl=585, purpose="x"
        )
        return chain.encode()

    def verify(self, chain: bytes, presenter: Identifier) -> None:
        self.verifier.verify(chain, presenter=presenter, feeds=self.feeds, now=T + 30)


def test_a_verifier_that_saw_a_rotation_refuses_the_retired_key() -> None:
    """Review 38d, memory 1. The verifier verified bob's chain, which carries alice's rotated
    history [c0, c1]; then the thief's chain to mallory, carrying [c0] and signed under it with
    the key alice retired, was accepted: the verifier kept nothing of what it verified (but
    the bytes of each chain, in its cache), so only acme's feed could refuse it, once it names
    her rotation. "A verifier that saw a history keeps it" held for nodes only (their store).

    Was a strict xfail until a `ChainVerifier` without `known` remembered the last change of
    the newest full history of each identity it verified in a chain that passed
    (`SEEN_IDENTITIES`, 16,384), and refused an issuer or presenter history that does not hold
    it (`history is older than the stored copy`, a fork)."""
    world = World()
    world.verify(world.delegated(world.alice, world.bob), world.bob)
    thiefs = world.delegated(world.stolen, world.mallory)
    with pytest.raises(CredentialError) as refused:
        world.verify(thiefs, world.mallory)
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID
    assert "history is older than" in str(refused.value)


def test_a_verifier_that_never_saw_the_rotation_still_accepts_the_older_history() -> None:
    """The control (docs/formats.md, "Pre-rotation and stored histories"): a verifier that has
    not seen alice's rotation has only acme's feed to tell it."""
    world = World()
    world.verify(world.delegated(world.stolen, world.mallory), world.mallory)


def test_a_verifier_that_saw_a_rotation_refuses_a_stolen_backups_fork() -> None:
    """A thief holding alice's whole backup (k0 and the committed k1) rotates her c0 to a
    change 1 of its own and delegates under it: a verifier that verified her real rotation
    refuses the fork (memory 1's fix), where the feed does not name her rotation yet."""
    world = World()
    world.verify(world.delegated(world.alice, world.bob), world.bob)
    stolen = world.stolen
    held = rotate_identity(
        world.vault, stolen.identity, stolen.primary, stolen.next_primary, now=T + 15, valid_for=600
    )
    fork = Party(
        held.identity,
        held.primary,
        signer_as(world.vault, held.primary, held.identity, now=T + 15),
        held.next_key,
    )
    with pytest.raises(CredentialError) as refused:
        world.verify(world.delegated(fork, world.mallory), world.mallory)
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID
    assert "history forks from the stored copy" in str(refused.value)


def test_her_next_rotation_extends_what_the_verifier_saw() -> None:
    """Alice's own next rotation extends what the verifier remembers: her chains under it
    verify, and those under her previous change no longer do."""
    world = World()
    before = world.delegated(world.alice, world.bob)
    world.verify(before, world.bob)
    alice = world.alice
    held = rotate_identity(
        world.vault, alice.identity, alice.primary, alice.next_primary, now=T + 15, valid_for=600
    )
    rotated = Party(
        held.identity,
        held.primary,
        signer_as(world.vault, held.primary, held.identity, now=T + 15),
        held.next_key,
    )
    world.verify(world.delegated(rotated, world.mallory), world.mallory)
    with pytest.raises(CredentialError) as refused:
        world.verify(before, world.bob)
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID
    assert "history is older than the stored copy" in str(refused.value)


def test_a_chain_that_passed_is_judged_again_once_the_memory_learns_more() -> None:
    """The warm path (`_Checked.agreed`: a chain that passed the memory at its current version
    passes again unjudged) must not outlive what the memory learns: the thief's chain passes
    twice before the verifier sees alice's rotation (the control) and is refused after it."""
    world = World()
    thiefs = world.delegated(world.stolen, world.mallory)
    world.verify(thiefs, world.mallory)
    world.verify(thiefs, world.mallory)  # the same bytes: the cached chain, the warm path
    world.verify(world.delegated(world.alice, world.bob), world.bob)
    with pytest.raises(CredentialError) as refused:
        world.verify(thiefs, world.mallory)
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID
    assert "history is older than" in str(refused.value)
