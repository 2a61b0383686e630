"""Review 61s (adversarial review of 61q's fixes): attacks that did not work."""

from __future__ import annotations

import pytest

import troth
from tests.support.public_api import Agents
from tests.test_review61s_policies import _refused_while_beta_unsynced, world

__all__ = ["world"]


@pytest.mark.parametrize(
    "marks",
    [
        ["node:beta"],  # 61q's rule: a link revocation with an authority found here
        ["node:gone"],  # a node since removed: fails closed, no error escapes
        ["node:beta", "tcp:x"],  # "tcp:" sorts after "node:": the local mark is the least
        ["", "/tcp/192.0.2.1:4000"],  # the empty (troth.node.localdue) mark is always least
    ],
)
def test_a_local_mark_refuses_while_unsynced(
    world: Agents, monkeypatch: pytest.MonkeyPatch, marks: list[str]
) -> None:
    decision = _refused_while_beta_unsynced(world, monkeypatch, marks)
    assert (decision.allowed, decision.outcome) == (False, troth.Outcome.CREDENTIAL)
    assert "stale" in decision.reason
