"""Review 66c2: attacks on the policy signing hold of a restored node.db that did not work."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.backups import copy_db, node_db, restore_db
from tests.test_review45f_policy import bundles
from tests.test_review66o_hold import _sign
from troth.clock import SystemClock
from troth.errors import PolicyError, PolicyFailure
from troth.node import open_node
from troth.node.services.node_policies import NodeFeeds, NodePolicies
from troth.node.services.policy import install_bundle


def _pushed(home: Path, data: bytes) -> None:
    """`data` stored as a member's push stores it (no operator's word)."""
    clock = SystemClock()
    with open_node("acme", home=home) as node:
        feeds = NodeFeeds(node, clock)
        policies = NodePolicies(node, feeds)
        policies.trust(feeds.anchors(), now=clock.now())
        assert policies.accept(data, now=clock.now(), confirms=False)[1]


def test_a_copy_carrying_the_operators_word_for_an_earlier_restore_does_not_end_the_hold(
    troth_home: Path, tmp_path: Path
) -> None:
    """The operator's install ended the hold of restore A; a copy taken then (its cleared row
    inside) restored again is restore B: the word was for A, so a member's push of a newer
    bundle does not end B's hold (the word is keyed to the restore found)."""
    first, second = bundles(troth_home, tmp_path)
    path = node_db(troth_home, "acme")
    copy_db(path, tmp_path / "empty.db")
    install_bundle(troth_home, "acme", first.read_bytes(), clock=SystemClock())
    restore_db(path, tmp_path / "empty.db")  # restore A
    install_bundle(troth_home, "acme", second.read_bytes(), clock=SystemClock())  # the word
    third = _sign(troth_home, 3)  # the word ended A's hold
    copy_db(path, tmp_path / "cleared.db")
    install_bundle(troth_home, "acme", third, clock=SystemClock())
    restore_db(path, tmp_path / "cleared.db")  # restore B: revision 2 held back
    _pushed(troth_home, third)  # a member's push ends the hold-back, not the signing hold
    with pytest.raises(PolicyError) as caught:
        _sign(troth_home, 4)
    assert caught.value.reason is PolicyFailure.RESTORED
    install_bundle(troth_home, "acme", third, clock=SystemClock())  # the operator's word
    assert _sign(troth_home, 4)
