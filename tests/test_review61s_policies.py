"""Review 61s (adversarial review of 61q's fixes), policies: the due-sync rule of
`LocalCredential._judge_identity` read each authority's least mark address
(`syncs_due()`, min(address)): a mark over the network sorted before a local one and hid it.
Fixed by the lead: `syncs_due()` gives a mark on this machine first."""

from __future__ import annotations

import pytest

import troth
from tests import test_review61q_policies
from tests.conftest import NOW
from tests.support.public_api import Agents
from troth.node import syncdue

REFUND = test_review61q_policies.REFUND
world = test_review61q_policies.world  # the fixture: acme's hub and the agents node


def _refused_while_beta_unsynced(
    world: Agents, monkeypatch: pytest.MonkeyPatch, addresses: list[str]
) -> troth.PolicyDecision:
    with test_review61q_policies.writer_of_acme_and_beta(world) as beta:
        store = world.agents._stored.wallet.store
        for address in addresses:
            store.mark_sync_due(beta.identifier.digest, address, NOW)

        def fails(*_: object, **__: object) -> None:
            raise troth.StorageError("beta's node does not open")

        monkeypatch.setattr(syncdue, "sync_local_feed", fails)
        return world.agents.policies.decide("writer", "refund", REFUND)


def test_a_remote_mark_does_not_hide_a_local_one_of_the_same_authority(
    world: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    marks = ["node:beta", "/tcp/192.0.2.1:4000"]
    decision = _refused_while_beta_unsynced(world, monkeypatch, marks)
    assert (decision.allowed, decision.outcome) == (False, troth.Outcome.CREDENTIAL)
    assert "stale" in decision.reason
