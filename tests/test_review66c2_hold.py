"""Review 66c2, hold: the policy signing hold of a restored node.db (reviews 66b, 66o, 66x:
hold 1) attacked once its time limit was dropped (66x hold 1, fixed here: the hold has no time
limit, the lead's decision; tests/test_review66x_hold.py).

hold 2 (low: a fleet's policy rolled back, as 66o hold 1, by a stale member) Once the hold is
  on for an authority the restored copy holds no bundle of, any bundle of it stored ends the
  hold (`SqliteBundleTable._stored` drops the authority from `gates_policy_held_back`), even an
  older one a stale member pushes: the fleet holds revision 2, the copy is from before
  revision 1, a member still holding revision 1 pushes it, and the node then signs "one up",
  revision 2, beside the fleet's revision 2 (the lower digest wins on every node). The node
  cannot tell, without a format change, that the bundle stored is not older than what the
  restore lost (the guard counts stores, not revisions). Now the signing hold of a restore
  found in the `policy` scope ends only on the operator's word: a bundle of the authority
  installed by the operator (`troth policy push`, `policy_hold.clear_hold`, keyed
  to the last restore found) or `--fleet-holds-none`; a pulled or pushed bundle no longer ends
  it (the table's own held-back state, which the engine's deny reads, is unchanged).
"""

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


def test_hold2_a_stale_members_older_bundle_does_not_end_the_hold(
    troth_home: Path, tmp_path: Path
) -> None:
    first, second = bundles(troth_home, tmp_path)
    path, copy = node_db(troth_home, "acme"), tmp_path / "copy.db"
    copy_db(path, copy)  # before the authority's first bundle
    for bundle in (first, second):  # the fleet's revisions 1 then 2
        install_bundle(troth_home, "acme", bundle.read_bytes(), clock=SystemClock())
    restore_db(path, copy)
    clock = SystemClock()
    with open_node("acme", home=troth_home) as node:  # a stale member's push of revision 1
        feeds = NodeFeeds(node, clock)
        policies = NodePolicies(node, feeds)
        policies.trust(feeds.anchors(), now=clock.now())
        assert policies.accept(first.read_bytes(), now=clock.now(), confirms=False)[1]
    with pytest.raises(PolicyError) as caught:
        _sign(troth_home, 2)  # beside the fleet's revision 2
    assert caught.value.reason is PolicyFailure.RESTORED
