"""Review 42a, memory: a store-less `ChainVerifier`'s memory charged to the root authority whose
chains showed each entry (review 41a, memory 3: a co-trusted authority's fresh members flushed
another authority's member's rotation).

The world of review 38d: alice, a member of acme, rotated ([c0, c1]); a thief holds her backup
(k0). Globex is a second authority the verifier trusts (its word counts for its own chains
only, review 23a). The memory is made small (16 entries) so that a flood is cheap to show.
"""

from __future__ import annotations

import pytest

from tests.support.parties import Party, make_party
from tests.test_review38d_memory import ORDERS, T, World
from tests.test_review40a_memory import eves_root, flood
from tests.test_review41a_memory import _rotated, _with_globex
from troth.credentials import CredentialChain, delegate, issue_credential
from troth.errors import CredentialError, CredentialFailure
from troth.identity import Identifier

SMALL = 16


@pytest.fixture(autouse=True)
def _small_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("troth.credentials.memory.SEEN_IDENTITIES", SMALL)
    monkeypatch.setattr("troth.credentials.memory.SEEN_PER_SOURCE", SMALL // 4)


def _member_chain(world: World, authority: Party, by: Party) -> bytes:
    """`authority` vouches for `by`'s identifier (its member), who delegates on to mallory."""
    root = issue_credential(
        authority.signer, subject=by.identifier, attributes=ORDERS, now=T, ttl=86_400, depth=2
    )
    chain = CredentialChain((root,), (authority.identity.history,))
    onward = delegate(
        by.signer, chain, subject=world.mallory, attributes=ORDERS, now=T + 20, ttl=580, purpose="x"
    )
    return onward.encode()


def _flood(world: World, authority: Party, count: int) -> None:
    """`authority` vouches for `count` fresh members, each delegating on to mallory."""
    for _ in range(count):
        world.verify(_member_chain(world, authority, make_party(world.vault, now=T)), world.mallory)


def _refused_as_older(chain: bytes, world: World) -> None:
    with pytest.raises(CredentialError) as refused:
        world.verify(chain, world.mallory)
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID
    assert "history is older than" in str(refused.value)


def test_the_flooding_root_forgets_its_own_oldest_entries() -> None:
    """Globex's member gina rotated ([g0, g1]) and the verifier saw it in globex's chain; a
    thief holding her g0 is refused. Globex then vouches for SMALL fresh members: the memory
    is full, and the root holding the most (globex) forgets its own oldest entries, gina's
    rotation among them (the thief's g0 verifies again under globex), while acme's entries
    (alice's rotation) stand: her thief is still refused."""
    world = World()
    globex = _with_globex(world)
    world.verify(world.delegated(world.alice, world.bob), world.bob)
    gina = make_party(world.vault, now=T)
    world.verify(_member_chain(world, globex, _rotated(world, gina, T + 10)), world.mallory)
    ginas_thief = _member_chain(world, globex, gina)
    _refused_as_older(ginas_thief, world)
    _flood(world, globex, SMALL)
    world.verify(ginas_thief, world.mallory)  # globex's own oldest went
    _refused_as_older(world.delegated(world.stolen, world.mallory), world)


def test_pinned_a_single_root_verifier_forgets_its_older_entries_past_the_bound() -> None:
    """Pinned: with one root the memory stays bounded (SEEN_IDENTITIES) by forgetting that
    root's oldest entries: acme vouching for SMALL fresh members forgets alice's rotation, and
    the thief's chain under her retired key verifies again (the residual the bound costs, as
    before review 42a)."""
    world = World()
    world.verify(world.delegated(world.alice, world.bob), world.bob)
    thiefs = world.delegated(world.stolen, world.mallory)
    _refused_as_older(thiefs, world)
    _flood(world, world.acme, SMALL)
    world.verify(thiefs, world.mallory)


def test_a_co_trusted_authority_showing_a_stale_history_first_cannot_flush_the_rotation() -> None:
    """Review 42a, memory 1. Before the verifier sees alice's rotation, the thief (holding her
    k0) shows her [c0] in a globex chain (globex vouches for her identifier: malicious, or a
    careless member): the entry is charged to globex. Alice's [c0, c1] under acme then extended
    it, and it stayed charged to globex; globex vouched for SMALL fresh members, and as the root
    holding the most forgot its oldest entries, alice's rotation with them: the thief's chain
    under acme with her retired key verified again, globex's chains weakening acme's (review
    23a) as in review 41a, memory 3.

    Was a strict xfail until an entry's main history replaced or extended by a root's chain was
    charged to that root (the root whose chains showed the newest history it holds first):
    alice's [c0, c1] moves it to acme's share, which globex's flood does not touch."""
    world = World()
    globex = _with_globex(world)
    world.verify(_member_chain(world, globex, world.stolen), world.mallory)  # [c0], first
    world.verify(world.delegated(world.alice, world.bob), world.bob)  # [c0, c1] under acme
    thiefs = world.delegated(world.stolen, world.mallory)
    _refused_as_older(thiefs, world)
    _flood(world, globex, SMALL)
    _refused_as_older(thiefs, world)


def _via(world: World, member: Party, by: Party, to: Identifier) -> bytes:
    """Acme's `member` delegates to `by`'s identifier, who delegates on to `to`."""
    chain = delegate(
        member.signer,
        eves_root(world, member),
        subject=by.identifier,
        attributes=ORDERS,
        now=T + 20,
        ttl=600,
        purpose="x",
        depth=1,
    )
    onward = delegate(
        by.signer, chain, subject=to, attributes=ORDERS, now=T + 20, ttl=580, purpose="x"
    )
    return onward.encode()


def test_a_member_showing_a_stale_history_first_cannot_flush_the_rotation() -> None:
    """Review 42a, memory 2. Alice is a delegate of acme's members xavier and eve (malicious,
    or careless). Before the verifier sees alice's rotation, the thief (holding her k0) shows
    her [c0] as eve's delegate: the entry is charged to eve. Alice's [c0, c1] as xavier's
    delegate extended it, and it stayed charged to eve; eve delegated to SEEN_PER_SOURCE fresh
    identities, and her oldest charged entry, alice's rotation, went: the thief's chain under
    xavier with her retired key verified again (review 40a, memory 1: a member's delegates
    were to flush only her own delegates' entries).

    Was a strict xfail until an entry's main history replaced or extended by a chain was
    charged to that chain's member (and root): alice's [c0, c1] moves it to xavier's."""
    world = World()
    eve, xavier = make_party(world.vault, now=T), make_party(world.vault, now=T)
    world.verify(_via(world, eve, world.stolen, world.mallory), world.mallory)  # [c0], first
    world.verify(_via(world, xavier, world.alice, world.bob), world.bob)  # [c0, c1]
    thiefs = _via(world, xavier, world.stolen, world.mallory)
    _refused_as_older(thiefs, world)
    flood(world, eve, SMALL // 4)
    _refused_as_older(thiefs, world)


def test_the_root_holding_the_most_changes_forgets_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past SEEN_CHANGES the root holding the most changes forgets its own oldest entries:
    globex vouching for members with long histories (4 changes each, past the bound in all)
    never forgets acme's entries, and alice's thief is still refused."""
    monkeypatch.setattr("troth.credentials.memory.SEEN_IDENTITIES", 1024)
    monkeypatch.setattr("troth.credentials.memory.SEEN_CHANGES", 24)
    world = World()
    globex = _with_globex(world)
    world.verify(world.delegated(world.alice, world.bob), world.bob)
    thiefs = world.delegated(world.stolen, world.mallory)
    for _ in range(12):  # 48 changes
        member = make_party(world.vault, now=T)
        for step in range(3):
            member = _rotated(world, member, T + 1 + step)
        world.verify(_member_chain(world, globex, member), world.mallory)
    _refused_as_older(thiefs, world)
