"""Review 40a, refuted attempts (pinned): a store-less verifier's memory (review 38d, memory 1)
is written only once a chain passed every check the verifier makes, so a thief's fork in a
chain refused for any reason (another presenter, a revoked credential, an expired link) locks
out no one; and the memory's refusal is per identity, not per chain.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.test_review38d_memory import T, World
from tests.test_review38d_verify import _desk_holding_acmes_word
from tests.test_review40a_memory import thiefs_rotation
from tests.test_trust_scope import feed_of
from troth.credentials import CredentialChain, RevocationKind
from troth.errors import CredentialError, CredentialFailure
from troth.node import open_node
from troth.node.verify import verify_bare_history


def _alice_still_verifies(world: World) -> None:
    world.verify(world.delegated(world.alice, world.bob), world.bob)


def test_a_fork_in_a_chain_shown_by_another_presenter_is_not_remembered() -> None:
    world = World()
    fork = world.delegated(thiefs_rotation(world), world.mallory)
    with pytest.raises(CredentialError) as refused:
        world.verify(fork, world.bob)  # not its subject
    assert refused.value.reason is CredentialFailure.WRONG_SUBJECT
    _alice_still_verifies(world)


def test_a_fork_in_a_revoked_chain_is_not_remembered() -> None:
    world = World()
    fork = world.delegated(thiefs_rotation(world), world.mallory)
    revoked = CredentialChain.decode(fork).credentials[-1].hash
    world.feeds = {
        world.acme.identifier: feed_of(world.acme, [(RevocationKind.CREDENTIAL, revoked)])
    }
    with pytest.raises(CredentialError) as refused:
        world.verify(fork, world.mallory)
    assert refused.value.reason is CredentialFailure.REVOKED
    world.feeds = {world.acme.identifier: feed_of(world.acme)}
    _alice_still_verifies(world)


def test_a_fork_in_a_chain_whose_key_expired_is_not_remembered() -> None:
    world = World()
    fork = world.delegated(thiefs_rotation(world), world.mallory)
    with pytest.raises(CredentialError) as refused:
        world.verifier.verify(fork, presenter=world.mallory, feeds=world.feeds, now=T + 700)
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID  # the fork's key expired
    assert "outside its validity" in str(refused.value)
    _alice_still_verifies(world)


def test_a_stale_held_feed_still_refuses_a_bare_history_it_supersedes(troth_home: Path) -> None:
    """Review 38d's bare-history judgement (now `troth.node.verify.verify_bare_history`) asks
    every held feed fresh or not: a node whose copy of acme's feed went stale (an hour past
    DEFAULT_FEED_STALENESS_SECONDS) still refuses the stolen backup (a supersession stands)."""
    stale, real = _desk_holding_acmes_word(troth_home)
    later = int(time.time()) + 3600
    with open_node("desk") as desk:
        with pytest.raises(CredentialError) as refused:
            verify_bare_history(desk, stale.read_bytes(), now=later)
        assert refused.value.reason is CredentialFailure.SUPERSEDED
        assert verify_bare_history(desk, real.history, now=later).identifier == real.identifier
