"""Review 41a, memory: attacks on a store-less `ChainVerifier`'s memory of the histories it
verified once it keeps every change's hash (review 40a, memory 4) and the root's feed outranks
it (review 40a, memory 3).

The world of review 38d: alice, a member of acme, rotated ([c0, c1]); a thief holds her backup
(k0, and the committed k1 for a fork of its own). Globex is a second authority the verifier
trusts (a co-trusted authority: its word counts for its own chains only, review 23a).
"""

from __future__ import annotations

import pytest

from tests.support.feeds import pages
from tests.support.parties import Party, make_party, signer_as
from tests.test_review38d_memory import ORDERS, T, World
from tests.test_review40a_memory import (
    acme_names_alices_rotation,
    flood,
    thiefs_rotation,
)
from tests.test_trust_scope import feed_of
from troth.credentials import (
    ChainVerifier,
    CredentialChain,
    RevocationEntry,
    RevocationKind,
    Supersession,
    TrustPolicy,
    VerifiedFeed,
    delegate,
    issue_credential,
    verify_page,
)
from troth.errors import CredentialError, CredentialFailure
from troth.identity import Identifier, rotate_identity


def _rotated(world: World, party: Party, at: int) -> Party:
    held = rotate_identity(
        world.vault, party.identity, party.primary, party.next_primary, now=at, valid_for=600
    )
    return Party(
        held.identity,
        held.primary,
        signer_as(world.vault, held.primary, held.identity, now=at),
        held.next_key,
    )


def _supersession_feed(authority: Party, party: Party) -> dict[Identifier, VerifiedFeed]:
    """`authority`'s feed naming `party`'s last change (its supersession of shorter histories)."""
    entry = RevocationEntry(
        0,
        RevocationKind.SUPERSEDED,
        party.identifier.digest,
        authority.identifier,
        T + 10,
        "",
        Supersession(party.identity.current.index + 1, party.identity.current_change_hash),
    )
    (page,) = pages(authority, [entry], now=T + 10, per_page=1)
    return {authority.identifier: verify_page(page, authority=authority.identifier, now=T + 10)}


def _with_globex(world: World) -> Party:
    """The verifier trusts globex too (its feed names nothing yet)."""
    globex = make_party(world.vault, now=T)
    world.verifier = ChainVerifier(
        TrustPolicy(frozenset({world.acme.identifier, globex.identifier}))
    )
    world.feeds = {world.acme.identifier: feed_of(world.acme), globex.identifier: feed_of(globex)}
    return globex


def _globex_chain(world: World, globex: Party, by: Party) -> bytes:
    """Globex vouches for alice's identifier; `by` (holding a history of it) delegates on to
    mallory."""
    root = issue_credential(
        globex.signer, subject=by.identifier, attributes=ORDERS, now=T, ttl=86_400, depth=2
    )
    chain = CredentialChain((root,), (globex.identity.history,))
    onward = delegate(
        by.signer, chain, subject=world.mallory, attributes=ORDERS, now=T + 20, ttl=580, purpose="x"
    )
    return onward.encode()


def test_a_co_trusted_authoritys_feed_does_not_unlock_a_fork_for_another_authority() -> None:
    """Review 41a, memory 1. The verifier saw alice's rotation [c0, c1] in acme's chain (acme's
    feed names nothing yet); the thief's fork [c0, c1'] in acme's chain is refused by the
    memory. Globex (a co-trusted authority, malicious or colluding with the thief) vouches for
    alice's identifier and names the fork's change 1 in its feed: the thief's globex chain
    verifies (globex's word for its own chains, review 23a), and the memory was replaced by the
    fork, so the thief's chain under acme, whose feed names nothing, verified too: globex's
    word unlocked a fork of acme's member for acme's chains.

    Was a strict xfail until each memory entry kept the root whose chains showed it (or that
    several did) and only that root's feed replaces it; another root's feed outranks it for
    that root's chains alone, the memory kept."""
    world = World()
    globex = _with_globex(world)
    world.verify(world.delegated(world.alice, world.bob), world.bob)  # the memory: c1
    fork = thiefs_rotation(world)
    under_acme = world.delegated(fork, world.mallory)
    with pytest.raises(CredentialError):
        world.verify(under_acme, world.mallory)
    world.feeds = {world.acme.identifier: feed_of(world.acme), **_supersession_feed(globex, fork)}
    world.verify(_globex_chain(world, globex, fork), world.mallory)  # globex's own word
    with pytest.raises(CredentialError) as refused:
        world.verify(under_acme, world.mallory)
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID
    assert "history forks from the stored copy" in str(refused.value)


def test_refuted_the_feed_naming_an_earlier_change_keeps_the_owners_later_rotation() -> None:
    """Refuted (pinned), memory 2: the verifier saw alice rotate twice ([c0, c1, c2]: the
    thief's backup held k1 too); acme's feed names only change 1. The thief replays her public
    [c0, c1] signing with k1: the feed accepts it, and the memory, whose change 1 is the one the
    feed names (her later rotation, not a fork), still refuses it (review 38d, memory 1)."""
    world = World()
    twice = _rotated(world, world.alice, T + 12)
    world.verify(world.delegated(twice, world.bob), world.bob)  # the memory: [c0, c1, c2]
    acme_names_alices_rotation(world)  # change 1: c1
    with pytest.raises(CredentialError) as refused:
        world.verify(world.delegated(world.alice, world.mallory), world.mallory)  # k1, [c0, c1]
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID
    assert "history is older than" in str(refused.value)


def test_refuted_the_replaced_fork_stays_refused() -> None:
    """Refuted (pinned), memory 3: the memory holds the thief's [c0, c1', c2'] and acme names
    alice's change 1 (c1): her [c0, c1] replaces it (review 40a, memory 4). The thief's own
    chain under [c0, c1', c2'] is refused by the feed, and its replay of her public [c0, c1]
    with k1 is what the feed accepts (its word): nothing in the memory to tell them apart."""
    world = World()
    second = _rotated(world, thiefs_rotation(world), T + 6)
    world.verify(world.delegated(second, world.mallory), world.mallory)
    acme_names_alices_rotation(world)
    world.verify(world.delegated(world.alice, world.bob), world.bob)
    with pytest.raises(CredentialError) as refused:
        world.verify(world.delegated(second, world.mallory), world.mallory)
    assert refused.value.reason is CredentialFailure.SUPERSEDED


def _long_flood(world: World, eve: Party, count: int, rotations: int) -> None:
    """Eve delegates to `count` fresh identities of her own, each rotated `rotations` times,
    delegating on to mallory: each chain carries a full history of `rotations + 1` changes."""

    def made() -> Party:
        fresh = make_party(world.vault, now=T)
        for step in range(rotations):
            fresh = _rotated(world, fresh, T + 1 + step)
        return fresh

    flood(world, eve, count, made=made)


def test_a_members_long_histories_flush_no_other_members_rotation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Memory 4 (the bound in changes, review 41a): eve's delegates with long histories are
    charged to eve by their changes (`SEEN_CHANGES_PER_SOURCE`): past it her oldest goes, and
    the memory as a whole (`SEEN_CHANGES`) is never filled by one member: alice's rotation
    stands and the thief's chain under her retired key is still refused."""
    monkeypatch.setattr("troth.credentials.memory.SEEN_CHANGES", 32)
    monkeypatch.setattr("troth.credentials.memory.SEEN_CHANGES_PER_SOURCE", 8)
    world = World()
    world.verify(world.delegated(world.alice, world.bob), world.bob)
    thiefs = world.delegated(world.stolen, world.mallory)
    _long_flood(world, make_party(world.vault, now=T), 12, 3)  # 48 changes, over SEEN_CHANGES
    with pytest.raises(CredentialError) as refused:
        world.verify(thiefs, world.mallory)
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID
    assert "history is older than" in str(refused.value)


def _via_globex_member(world: World, globex: Party, by: Party) -> bytes:
    """A member of globex (colluding with the thief, or only careless) delegates to alice's
    identifier; `by` (holding a history of it) delegates on to mallory."""
    member = make_party(world.vault, now=T)
    root = issue_credential(
        globex.signer, subject=member.identifier, attributes=ORDERS, now=T, ttl=86_400, depth=3
    )
    chain = delegate(
        member.signer,
        CredentialChain((root,), (globex.identity.history,)),
        subject=by.identifier,
        attributes=ORDERS,
        now=T + 20,
        ttl=580,
        purpose="x",
        depth=2,
    )
    onward = delegate(
        by.signer, chain, subject=world.mallory, attributes=ORDERS, now=T + 20, ttl=580, purpose="x"
    )
    return onward.encode()


def test_a_fork_shown_under_two_roots_is_still_replaced_by_the_owners_authority() -> None:
    """Review 41a, memory 2. The thief rotated twice ([c0, c1', c2']) and shows the fork in
    acme's chain and, through a member of globex that delegates to alice's identifier, in
    globex's: the entry is marked as shown under several roots, which no feed replaces (review
    41a, memory 1). Acme names alice's change 1: her [c0, c1, c2] verifies (acme's feed
    outranks the fork for acme's chains) but was not remembered, so the thief's replay of her
    public [c0, c1] with the stolen k1 was judged by the feed alone and verified, where a
    verifier that saw only acme's chains refuses it (memory 1 of review 38d).

    Was a strict xfail until a root's feed outranking an entry it may not replace kept the
    presented history beside it as that root's own copy, judging that root's chains from then
    on (bounded and charged as the rest)."""
    world = World()
    globex = _with_globex(world)
    second = _rotated(world, thiefs_rotation(world), T + 6)
    world.verify(world.delegated(second, world.mallory), world.mallory)
    world.verify(_via_globex_member(world, globex, second), world.mallory)
    twice = _rotated(world, world.alice, T + 12)
    world.feeds = {**world.feeds, **_supersession_feed(world.acme, world.alice)}  # change 1: c1
    world.verify(world.delegated(twice, world.bob), world.bob)  # outranks the fork
    with pytest.raises(CredentialError) as refused:
        world.verify(world.delegated(world.alice, world.mallory), world.mallory)  # k1, [c0, c1]
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID
    assert "history is older than" in str(refused.value)


def test_refuted_the_same_fork_shown_under_one_root_is_replaced() -> None:
    """The control of memory 2: shown under acme's chains alone, the fork is replaced by
    alice's [c0, c1, c2] and the thief's replay of [c0, c1] is refused."""
    world = World()
    _with_globex(world)
    second = _rotated(world, thiefs_rotation(world), T + 6)
    world.verify(world.delegated(second, world.mallory), world.mallory)
    twice = _rotated(world, world.alice, T + 12)
    world.feeds = {**world.feeds, **_supersession_feed(world.acme, world.alice)}
    world.verify(world.delegated(twice, world.bob), world.bob)
    with pytest.raises(CredentialError) as refused:
        world.verify(world.delegated(world.alice, world.mallory), world.mallory)
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID
    assert "history is older than" in str(refused.value)


def test_refuted_a_replayed_fork_under_an_older_feed_stays_refused() -> None:
    """Refuted (pinned), memory 3: once acme's feed replaced the thief's remembered
    [c0, c1', c2'] by alice's [c0, c1], the thief replays its fork to a relying party handed
    acme's older feed (naming nothing, still within its staleness): the memory the newer feed
    wrote refuses it (a fork), where the old memory would have accepted it."""
    world = World()
    older = world.feeds
    second = _rotated(world, thiefs_rotation(world), T + 6)
    world.verify(world.delegated(second, world.mallory), world.mallory)
    acme_names_alices_rotation(world)
    world.verify(world.delegated(world.alice, world.bob), world.bob)
    world.feeds = older
    with pytest.raises(CredentialError) as refused:
        world.verify(world.delegated(second, world.mallory), world.mallory)
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID
    assert "history forks from the stored copy" in str(refused.value)


def test_a_co_trusted_authoritys_members_flush_no_other_authoritys_rotation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review 41a, memory 3. Globex (a co-trusted authority, malicious or with a leaked key)
    vouches for SEEN_IDENTITIES fresh identities, each delegating on to mallory: each is the
    member of its chain, charged to no member (review 40a, memory 1), so the older half of the
    memory went, alice's rotation with it, and the thief's chain under acme with her retired
    key verified again before acme's feed named her rotation: globex's chains weakened acme's
    (review 23a: a co-trusted authority's word counts for its own chains only). At 16,384 it
    cost globex 16,384 key pairs and signatures.

    Was a strict xfail until review 42a charged every entry to the root authority whose chains
    showed it first and, when the memory is full, forgot the oldest entries of the root holding
    the most: globex's flood forgets only globex's entries while it holds more than acme."""
    monkeypatch.setattr("troth.credentials.memory.SEEN_IDENTITIES", 16)
    monkeypatch.setattr("troth.credentials.memory.SEEN_PER_SOURCE", 4)
    world = World()
    globex = _with_globex(world)
    world.verify(world.delegated(world.alice, world.bob), world.bob)
    thiefs = world.delegated(world.stolen, world.mallory)
    for _ in range(16):
        world.verify(_globex_chain(world, globex, make_party(world.vault, now=T)), world.mallory)
    with pytest.raises(CredentialError) as refused:
        world.verify(thiefs, world.mallory)
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID
    assert "history is older than" in str(refused.value)
