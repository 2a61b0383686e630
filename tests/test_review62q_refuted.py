"""Review 62q, refuted: attacks on the admission re-check taking up the handshake verifier's
byte checks (`ChainVerifier(checked_by=...)`, node/trust.py; review 62n, bench 3) that did not
work. Each re-check below is shown to take the bytes up (its own `_check_bytes` refuses to
run), so that its own time, state and memory checks are what refuses.

World (tests/test_review38d_memory.py): acme, alice (its member, rotated at T + 10: [c0, c1]),
bob and mallory; the thief holds alice's retired key (history [c0]).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.support.feeds import pages, superseded
from tests.support.parties import Party, make_party
from tests.test_review38d_memory import ORDERS, T, World
from tests.test_trust_scope import feed_of
from troth.credentials import (
    ChainVerifier,
    CredentialChain,
    RevocationKind,
    TrustPolicy,
    VerifiedFeed,
    issue_credential,
    verify_page,
)
from troth.errors import CredentialError, CredentialFailure
from troth.identity import Checkpoint, Identifier, VerifiedIdentity, encode_history
from troth.node import init_node, open_node
from troth.node.trust import NodeTrust

NOW = T + 30


def _accept(identity: VerifiedIdentity, root: Identifier) -> None:
    """A handshake verifier's `known_in` that stores nothing and refuses nothing."""


def _pair(world: World) -> tuple[ChainVerifier, ChainVerifier]:
    """A node's handshake verifier and its re-check (node/trust.py), under one policy."""
    handshake = ChainVerifier(world.verifier.policy, known_in=_accept)
    return handshake, ChainVerifier(handshake.policy, checked_by=handshake)


def _taking_up(recheck: ChainVerifier) -> None:
    """Make `recheck` unable to check bytes itself: what it verifies it took up."""

    def refuse(*args: Any) -> Any:
        raise AssertionError("the re-check checked the bytes again")

    recheck._check_bytes = refuse  # type: ignore[method-assign, assignment]


def _refusal(verify: Callable[[], object]) -> CredentialError:
    with pytest.raises(CredentialError) as refused:
        verify()
    return refused.value


def _link_hash(chain: bytes, index: int) -> bytes:
    return CredentialChain.decode(chain).credentials[index].hash


def _recheck_refuses(world: World, chain: bytes, feed: VerifiedFeed) -> CredentialError:
    """Bob's `chain` verified at the handshake under acme's empty feed, then re-checked
    (bytes taken up) under `feed`."""
    handshake, recheck = _pair(world)
    feeds = {world.acme.identifier: feed_of(world.acme)}
    handshake.verify(chain, presenter=world.bob, feeds=feeds, now=NOW)
    _taking_up(recheck)
    later = {world.acme.identifier: feed}
    return _refusal(lambda: recheck.verify(chain, presenter=world.bob, feeds=later, now=NOW))


def test_a_link_revoked_after_the_handshake_is_refused_by_the_recheck() -> None:
    world = World()
    chain = world.delegated(world.alice, world.bob)
    feed = feed_of(world.acme, [(RevocationKind.CREDENTIAL, _link_hash(chain, 1))])
    assert _recheck_refuses(world, chain, feed).reason is CredentialFailure.REVOKED


def test_an_issuer_revoked_after_the_handshake_is_refused_by_the_recheck() -> None:
    world = World()
    feed = feed_of(world.acme, [(RevocationKind.IDENTITY, world.alice.identifier.digest)])
    chain = world.delegated(world.alice, world.bob)
    assert _recheck_refuses(world, chain, feed).reason is CredentialFailure.REVOKED


def test_an_issuer_history_superseded_after_the_handshake_is_refused_by_the_recheck() -> None:
    """Acme's feed names another change 1 of alice (her key stolen and rotated by its owner
    again, say) after the handshake verified her history [c0, c1]: the re-check, taking the
    handshake's byte checks up, still judges the history against the newer feed."""
    world = World()
    feed = feed_of(world.acme, [(RevocationKind.SUPERSEDED, world.alice.identifier.digest)])
    refused = _recheck_refuses(world, world.delegated(world.alice, world.bob), feed)
    assert refused.reason is CredentialFailure.SUPERSEDED
    assert refused.link == 1


def test_the_recheck_memory_judges_a_history_it_takes_up() -> None:
    """The re-check's memory saw alice's rotation (bob's chain); the handshake verifier (a
    store's `known_in`, here one that refuses nothing) verified the thief's chain to mallory,
    signed under her retired key: the re-check takes its bytes up, and its memory, judging a
    `_Checked` it never agreed with (`agreed` None), refuses the older history."""
    world = World()
    handshake, recheck = _pair(world)
    recheck.verify(world.delegated(world.alice, world.bob), presenter=world.bob, **_at(world))
    thiefs = world.delegated(world.stolen, world.mallory)
    handshake.verify(thiefs, presenter=world.mallory, **_at(world))
    _taking_up(recheck)
    refused = _refusal(lambda: recheck.verify(thiefs, presenter=world.mallory, **_at(world)))
    assert refused.reason is CredentialFailure.ISSUER_INVALID
    assert "history is older than" in str(refused)


def _at(world: World, now: int = NOW) -> dict[str, Any]:
    return {"feeds": world.feeds, "now": now}


def test_a_taken_up_check_is_the_rechecks_own_the_handshakes_untouched() -> None:
    """The re-check's cached `_Checked` is its own (its memory's `agreed` set on it), not the
    handshake verifier's (whose `agreed` stays unset: it judges with `known_in`); they share
    only the frozen result and identities."""
    world = World()
    handshake, recheck = _pair(world)
    chain = world.delegated(world.alice, world.bob)
    handshake.verify(chain, presenter=world.bob, **_at(world))
    _taking_up(recheck)
    recheck.verify(chain, presenter=world.bob, **_at(world))
    theirs, ours = handshake._cache[chain], recheck._cache[chain]
    assert ours is not theirs
    assert theirs.agreed is None
    assert ours.agreed is not None
    assert ours.result is theirs.result
    assert ours.identities is theirs.identities


def test_a_check_made_later_than_the_rechecks_now_is_not_taken_up() -> None:
    """The handshake verified at NOW; a re-check at an earlier second (a clock set back)
    checks the bytes itself (histories are judged as of its `now`)."""
    world = World()
    handshake, recheck = _pair(world)
    chain = world.delegated(world.alice, world.bob)
    handshake.verify(chain, presenter=world.bob, **_at(world))
    _taking_up(recheck)
    with pytest.raises(AssertionError, match="checked the bytes again"):
        recheck.verify(chain, presenter=world.bob, **_at(world, NOW - 1))


def test_another_policys_checks_are_never_taken_up() -> None:
    """A handshake verifier trusting acme and globex verified globex's chain; a re-check
    trusting acme alone (its policy another, even an equal one is another object) takes
    nothing up: globex's chain is refused as untrusted."""
    world = World()
    globex = make_party(world.vault, now=T)
    both = TrustPolicy(frozenset({world.acme.identifier, globex.identifier}))
    handshake = ChainVerifier(both, known_in=_accept)
    root = issue_credential(
        globex.signer, subject=world.bob, attributes=ORDERS, now=T, ttl=600, depth=0
    )
    chain = CredentialChain((root,), (globex.identity.history,)).encode()
    feeds = {**world.feeds, globex.identifier: feed_of(globex)}
    handshake.verify(chain, presenter=world.bob, feeds=feeds, now=NOW)
    recheck = ChainVerifier(world.verifier.policy, checked_by=handshake)
    refused = _refusal(lambda: recheck.verify(chain, presenter=world.bob, feeds=feeds, now=NOW))
    assert refused.reason is CredentialFailure.UNTRUSTED_ISSUER
    equal = ChainVerifier(TrustPolicy(both.anchors), checked_by=handshake)
    assert equal._checked_by is None


def test_a_reload_that_changes_the_anchors_rechecks_with_the_new_handshake_verifier(
    tmp_path: Path,
) -> None:
    """A node whose trusted authorities change makes new verifiers (node/trust.py `reload`):
    the new re-check takes up the new handshake verifier's checks, never the old one's (of
    the old anchors)."""
    vault = World().vault
    acme, globex = make_party(vault, now=T), make_party(vault, now=T)
    init_node("hub", home=tmp_path)
    with open_node("hub", home=tmp_path) as node:
        trust = NodeTrust(node, None)
        node.wallet.trust(acme.identifier, "127.0.0.1:1", now=NOW)
        trust.reload(NOW)
        old = trust._handshakes
        assert old is not None
        assert trust._recheck is not None
        assert trust._recheck._checked_by is old
        node.wallet.trust(globex.identifier, "127.0.0.1:2", now=NOW)
        trust.reload(NOW)
        assert trust._handshakes is not old
        assert trust._recheck._checked_by is trust._handshakes
        assert trust._recheck.policy is trust._handshakes.policy


def _supersedes_c1(authority: Party, member: VerifiedIdentity) -> VerifiedFeed:
    """`authority`'s feed naming `member`'s change 1 (a checkpoint of her history there)."""
    entry = superseded(0, member.identifier, authority.identifier, 2, _c1(member), at=T)
    (page,) = pages(authority, [entry], now=T, per_page=1)
    return verify_page(page, authority=authority.identifier, now=T)


def _c1(member: VerifiedIdentity) -> bytes:
    return member.changes[1].change_hash


def test_a_checkpoint_only_another_anchor_attested_at_the_handshake_is_refused_at_recheck() -> None:
    """Alice delegates to bob under acme's chain, presenting her history from c1 with a
    checkpoint of globex (also trusted); only globex's feed names c1. The handshake's byte
    check accepts the suffix (`feed_checkpoints`: any held feed may attest), its state check
    refuses it (acme's own feed binds it not: review 23a) but leaves the byte check cached; the
    re-check taking it up refuses it as well. Once acme's feed names c1 it binds her history
    (and it is acme's word then, whatever globex's feed says: dropped from the re-check's)."""
    world = World()
    globex = make_party(world.vault, now=T)
    alice = world.alice.identity
    policy = TrustPolicy(frozenset({world.acme.identifier, globex.identifier}))
    handshake = ChainVerifier(policy, known_in=_accept)
    recheck = ChainVerifier(policy, checked_by=handshake)
    full = CredentialChain.decode(world.delegated(world.alice, world.bob))
    suffix = encode_history(
        [alice.changes[1].signed], Checkpoint(alice.identifier.digest, globex.identifier.digest, 1)
    )
    chain = CredentialChain(full.credentials, (full.histories[0], suffix)).encode()
    feeds = {world.acme.identifier: feed_of(world.acme), globex.identifier: feed_of(globex)}
    feeds[globex.identifier] = _supersedes_c1(globex, alice)
    for verifier in (handshake, recheck):
        refused = _refusal(
            partial(verifier.verify, chain, presenter=world.bob, feeds=feeds, now=NOW)
        )
        assert refused.reason is CredentialFailure.ISSUER_INVALID
        assert "whose feed names none of its changes" in str(refused)
        _taking_up(recheck)
    assert chain in handshake._cache  # what the re-check took up
    bound = {world.acme.identifier: _supersedes_c1(world.acme, alice)}
    recheck.verify(chain, presenter=world.bob, feeds=bound, now=NOW)
