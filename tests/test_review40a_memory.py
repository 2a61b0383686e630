"""Review 40a, memory: attacks on what a `ChainVerifier` without a store remembers of the
histories it verified (review 38d, memory 1: `SEEN_IDENTITIES`, the older half forgotten when
full).

The world of review 38d: alice, a member of acme, rotated away from a leaked key k0; the
verifier saw her rotation in her chain to bob and refuses the thief's chains under k0 until
acme's feed names the rotation. Eve is another member of acme that may delegate.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.feeds import pages
from tests.support.parties import Party, make_party, signer_as
from tests.test_review38d_memory import ORDERS, T, World
from troth.credentials import (
    CredentialChain,
    RevocationEntry,
    RevocationKind,
    Supersession,
    delegate,
    issue_credential,
    verify_page,
)
from troth.errors import CredentialError, CredentialFailure
from troth.identity import rotate_identity

SMALL = 16  # SEEN_IDENTITIES for these tests (SEEN_PER_SOURCE a quarter): the same at 16,384


def eves_root(world: World, eve: Party) -> CredentialChain:
    """Acme's credential to eve: she may delegate twice over."""
    root = issue_credential(
        world.acme.signer, subject=eve.identifier, attributes=ORDERS, now=T, ttl=86_400, depth=3
    )
    return CredentialChain((root,), (world.acme.identity.history,))


def flood(
    world: World,
    eve: Party,
    count: int,
    root: CredentialChain | None = None,
    *,
    made: Callable[[], Party] | None = None,
) -> None:
    """Eve delegates to `count` fresh identities of her own (`made`, else new parties), each
    delegating on to mallory: each chain verifies and carries a new full issuer history (the
    fresh identity's)."""
    root = root or eves_root(world, eve)
    for _ in range(count):
        fresh = made() if made is not None else make_party(world.vault, now=T)
        chain = delegate(
            eve.signer,
            root,
            subject=fresh.identifier,
            attributes=ORDERS,
            now=T + 20,
            ttl=580,  # within a rotated party's 600 s key (review 75l, issuance 1)
            purpose="x",
            depth=1,
        )
        onward = delegate(
            fresh.signer,
            chain,
            subject=world.mallory,
            attributes=ORDERS,
            now=T + 20,
            ttl=580,
            purpose="x",
        )
        world.verify(onward.encode(), world.mallory)


def acme_names_alices_rotation(world: World) -> None:
    """Acme's feed, held by the verifier, names alice's change 2 (her own rotation)."""
    entry = RevocationEntry(
        0,
        RevocationKind.SUPERSEDED,
        world.alice.identifier.digest,
        world.acme.identifier,
        T + 10,
        "",
        Supersession(2, world.alice.identity.current_change_hash),
    )
    (page,) = pages(world.acme, [entry], now=T + 10, per_page=1)
    world.feeds = {
        world.acme.identifier: verify_page(page, authority=world.acme.identifier, now=T + 10)
    }


def test_a_delegating_member_cannot_flush_anothers_rotation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review 40a, memory 1. Eve (a member that may delegate, or anyone holding such a
    member's key) delegates to SEEN_IDENTITIES fresh identities of her own, each delegating
    on: each chain verifies and adds a new entry, the older half (alice's among them) is
    forgotten, and the thief's chain under alice's retired key verifies again. At 16,384 the
    flood costs eve 16,384 key pairs and 32,768 signatures and the verifier 16,384 chain
    verifications: no bound per source.

    Was a strict xfail until the memory charged each entry to the member the chain's root
    vouched for (its first subject; the root and that member themselves charged to no one)
    and forgot, past `SEEN_PER_SOURCE` entries of one member, that member's oldest: a member's
    delegates flush only her own delegates' entries."""
    monkeypatch.setattr("troth.credentials.memory.SEEN_IDENTITIES", SMALL)
    monkeypatch.setattr("troth.credentials.memory.SEEN_PER_SOURCE", SMALL // 4)
    world = World()
    world.verify(world.delegated(world.alice, world.bob), world.bob)  # alice's [c0, c1] seen
    thiefs = world.delegated(world.stolen, world.mallory)
    with pytest.raises(CredentialError):
        world.verify(thiefs, world.mallory)
    flood(world, make_party(world.vault, now=T), SMALL)
    with pytest.raises(CredentialError) as refused:
        world.verify(thiefs, world.mallory)
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID
    assert "history is older than" in str(refused.value)


def test_a_members_delegate_flushes_no_member(monkeypatch: pytest.MonkeyPatch) -> None:
    """Alice's own delegate (she may delegate twice over) flooding with fresh identities of
    its own is charged to alice, the member acme vouched for: it forgets alice's delegates'
    entries, never the members' own (alice's rotation stands)."""
    monkeypatch.setattr("troth.credentials.memory.SEEN_IDENTITIES", SMALL)
    monkeypatch.setattr("troth.credentials.memory.SEEN_PER_SOURCE", SMALL // 4)
    world = World()
    world.verify(world.delegated(world.alice, world.bob), world.bob)
    thiefs = world.delegated(world.stolen, world.mallory)
    flood(world, world.alice, SMALL, world.root)  # depth 2: her delegates delegate on
    with pytest.raises(CredentialError) as refused:
        world.verify(thiefs, world.mallory)
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID
    assert "history is older than" in str(refused.value)


def thiefs_rotation(world: World) -> Party:
    """The thief holding alice's whole backup (k0 and the committed k1) rotates c0 to a change
    1 of its own, c1'."""
    stolen = world.stolen
    held = rotate_identity(
        world.vault, stolen.identity, stolen.primary, stolen.next_primary, now=T + 5, valid_for=600
    )
    return Party(
        held.identity,
        held.primary,
        signer_as(world.vault, held.primary, held.identity, now=T + 5),
        held.next_key,
    )


def test_the_roots_feed_outranks_a_fork_the_memory_saw_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review 40a, memory 3. The thief, holding alice's whole backup, rotates first: its chain
    carrying [c0, c1'] verifies (acme's feed names nothing yet) and the memory keeps c1'. Acme
    then names alice's real rotation (histories shorter than 2 changes are superseded, change 1
    is c1): the thief's chains are refused by the feed, and alice's own [c0, c1] were refused
    by the memory as a fork of c1' for as long as the verifier ran, though every verifier that
    never saw the thief's accepts them (before review 38d this one did too).

    Was a strict xfail until the root's feed naming a change at or after the one remembered
    overruled the memory (the presented history holds the named change: the feed checked it
    first), the memory replaced by the presented history."""
    world = World()
    fork = thiefs_rotation(world)
    world.verify(world.delegated(fork, world.mallory), world.mallory)  # the memory keeps c1'
    acme_names_alices_rotation(world)
    world.verify(world.delegated(world.alice, world.bob), world.bob)
    with pytest.raises(CredentialError) as refused:  # the thief's: by the feed
        world.verify(world.delegated(fork, world.mallory), world.mallory)
    assert refused.value.reason is CredentialFailure.SUPERSEDED


def test_a_fork_remembered_past_the_named_change_is_outranked_too() -> None:
    """Review 40a, memory 4. As memory 3, but the thief rotated twice ([c0, c1', c2'], its
    own committed keys) before the verifier saw it; acme then names alice's change 1. The
    memory held only change 2 (c2'): a change 1 named by the feed is older than it, and the
    memory held no hash of change 1 to see that c2' descends from another one, so alice's
    [c0, c1] stayed refused as a fork for as long as the verifier ran.

    Was a strict xfail until the memory kept every change's hash of a remembered history
    (review 41a: `SEEN_CHANGES`, `SEEN_CHANGES_PER_SOURCE`), so the feed naming change k
    outranks a remembered history whose change k is another one (a fork, replaced by the
    presented history) and not one whose change k is the named one (the owner's later
    rotation, kept: review 41a's pinned refutation)."""
    world = World()
    first = thiefs_rotation(world)
    held = rotate_identity(
        world.vault, first.identity, first.primary, first.next_primary, now=T + 6, valid_for=600
    )
    second = Party(
        held.identity,
        held.primary,
        signer_as(world.vault, held.primary, held.identity, now=T + 6),
        held.next_key,
    )
    world.verify(world.delegated(second, world.mallory), world.mallory)  # the memory: c2'
    acme_names_alices_rotation(world)
    world.verify(world.delegated(world.alice, world.bob), world.bob)
