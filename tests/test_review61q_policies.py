"""Review 61q, policies: the lead's `LocalCredential._judge_identity` rule (review 61j, api 4).

1. A local identity is now refused (STALE_FEED) whenever ANY authority whose chain it holds
   has a feed due a sync, before any chain is chosen. A mark left by a link revocation with
   a remote authority (`Node.revoke` of a link under it, taken there, its sync here failed:
   troth.node.syncdue) is settled only by a running node's sync of that feed (`settle_sync`
   answers False for an address not on this machine), so `decide` by name, and every other
   `LocalCredential` user, refuses the identity's calls under ANOTHER authority's chain until
   then: an authority unreachable for good denies them for good. The due-sync rule it extends
   (review 55i, mcp 2) passes over the due authority's chains only: the identity's chain of
   acme still decided, as before the change. A link revocation cannot revoke the identity
   itself (what `_judge_identity` judges), so the mark hides nothing the judgement reads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

import troth
from tests import test_review61j_api
from tests.conftest import NOW
from tests.support.policy_world import WRITE
from tests.support.public_api import Agents
from troth.node import syncdue

REFUND = test_review61j_api.REFUND
world = test_review61j_api.world  # the fixture: acme's hub and the agents node, POLICIES 1


@contextlib.contextmanager
def writer_of_acme_and_beta(world: Agents) -> Iterator[troth.Authority]:
    """`writer` on the agents node holding acme's WRITE chain and one of beta (on this
    machine, served for the block); beta."""
    with troth.Node.open("beta") as beta_node:
        beta = beta_node.create_authority()
        writer = world.agents.identities.create("writer")
        world.agents.enroll(world.acme.ticket(WRITE), identity=writer)
        world.agents.enroll(beta.ticket({"x.y": "z"}), identity=writer)
        yield beta


def test_a_remote_link_revocation_mark_leaves_other_authorities_chains_decided(
    world: Agents,
) -> None:
    with writer_of_acme_and_beta(world) as beta:
        assert world.agents.policies.decide("writer", "refund", REFUND).allowed
        # a link revocation with beta, reached over the network, whose sync here failed
        store = world.agents._stored.wallet.store
        store.mark_sync_due(beta.identifier.digest, "/tcp/192.0.2.1:4000", NOW)
        decision = world.agents.policies.decide("writer", "refund", REFUND)
    assert (decision.allowed, decision.outcome) == (True, troth.Outcome.ALLOWED), decision.reason


def test_a_mark_an_authority_here_may_have_made_still_refuses_until_synced(
    world: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the other side of 1: a mark with an address on this machine (or none) may stand for a
    # revocation of the identity made here, so the identity is still refused while it stands
    with writer_of_acme_and_beta(world) as beta:
        store = world.agents._stored.wallet.store
        store.mark_sync_due(beta.identifier.digest, "", NOW)  # as beta revoking here marks it

        def fails(*_: object, **__: object) -> None:
            raise troth.StorageError("beta's node does not open")

        monkeypatch.setattr(syncdue, "sync_local_feed", fails)
        decision = world.agents.policies.decide("writer", "refund", REFUND)
        assert (decision.allowed, decision.outcome) == (False, troth.Outcome.CREDENTIAL)
        assert "stale" in decision.reason
        store.clear_sync_due(beta.identifier.digest)
        assert world.agents.policies.decide("writer", "refund", REFUND).allowed
