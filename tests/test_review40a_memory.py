"""Review 40a, memory: attacks on what a `ChainVerifier` without a store remembers of the
histories it verified (review 38d, memory 1: `SEEN_IDENTITIES`, the older half forgotten when
full).

The world of review 38d: alice, a member of acme, rotated away from a leaked key k0; the
verifier saw her rotation in her chain to bob and refuses the thief's chains under k0 until
acme's feed names the rotation. Eve is another member of acme that may delegate.
"""

from __future__ import annotations

import pytest

from tests.support.parties import Party, make_party
from tests.test_review38d_memory import ORDERS, T, World
from troth.credentials import CredentialChain, delegate, issue_credential
from troth.errors import CredentialError, CredentialFailure

SMALL = 16  # SEEN_IDENTITIES for these tests (SEEN_PER_SOURCE a quarter): the same at 16,384


def eves_root(world: World, eve: Party) -> CredentialChain:
    """Acme's credential to eve: she may delegate twice over."""
    root = issue_credential(
        world.acme.signer, subject=eve.identifier, attributes=ORDERS, now=T, ttl=86_400, depth=3
    )
    return CredentialChain((root,), (world.acme.identity.history,))


def flood(world: World, eve: Party, count: int, root: CredentialChain | None = None) -> None:
    """Eve delegates to `count` fresh identities of her own, each delegating on to mallory:
    each chain verifies and carries a new full issuer history (the fresh identity's)."""
    root = root or eves_root(world, eve)
    for _ in range(count):
        fresh = make_party(world.vault, now=T)
        chain = delegate(
            eve.signer,
            root,
            subject=fresh.identifier,
            attributes=ORDERS,
            now=T + 20,
            ttl=600,
            purpose="x",
            depth=1,
        )
        onward = delegate(
            fresh.signer,
            chain,
            subject=world.mallory,
            attributes=ORDERS,
            now=T + 20,
            ttl=600,
            purpose="x",
        )
        world.verify(onward.encode(), world.mallory)


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
    monkeypatch.setattr("troth.credentials.verify.SEEN_IDENTITIES", SMALL)
    monkeypatch.setattr("troth.credentials.verify.SEEN_PER_SOURCE", SMALL // 4)
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
    monkeypatch.setattr("troth.credentials.verify.SEEN_IDENTITIES", SMALL)
    monkeypatch.setattr("troth.credentials.verify.SEEN_PER_SOURCE", SMALL // 4)
    world = World()
    world.verify(world.delegated(world.alice, world.bob), world.bob)
    thiefs = world.delegated(world.stolen, world.mallory)
    flood(world, world.alice, SMALL, world.root)  # depth 2: her delegates delegate on
    with pytest.raises(CredentialError) as refused:
        world.verify(thiefs, world.mallory)
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID
    assert "history is older than" in str(refused.value)
