"""Review 66e2, hold: the policy signing hold of a restored node.db (66b, 66o, 66x, 66c2).

hold 1 (low: a fleet's policy rolled back by a stale member, as 66c2 hold 2, past the
  operator's word) `--fleet-holds-none` (`fleet_holds_none`) ended the hold whatever the node
  held: restored from a copy holding no bundle of its authority, the node stored a stale
  member's revision 1 (a push) while the fleet holds 2, and signing "one up", revision 2,
  with the word went through, beside the fleet's revision 2 (the lower digest wins on every
  node). The word, that no node holds a bundle of the authority, is contradicted by the
  bundle this node holds. Now it counts only for an authority the node holds none of; else
  the hold stands (RESTORED, the message saying why) until the operator installs the fleet's
  newest.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.backups import copy_db, node_db, restore_db
from tests.test_review45f_policy import bundles
from tests.test_review66c2_refuted import _pushed
from tests.test_review66x_refuted import _sign
from troth.clock import SystemClock
from troth.errors import PolicyError, PolicyFailure
from troth.node.services.policy import install_bundle


def test_hold1_the_word_does_not_cover_a_bundle_the_node_holds(
    troth_home: Path, tmp_path: Path
) -> None:
    first, second = bundles(troth_home, tmp_path)
    path, copy = node_db(troth_home, "acme"), tmp_path / "copy.db"
    copy_db(path, copy)  # before the authority's first bundle
    for bundle in (first, second):  # the fleet's revisions 1 then 2
        install_bundle(troth_home, "acme", bundle.read_bytes(), clock=SystemClock())
    restore_db(path, copy)
    _pushed(troth_home, first.read_bytes())  # a stale member's push of revision 1
    with pytest.raises(PolicyError) as caught:
        _sign(troth_home, 2, fleet_holds_none=True)  # beside the fleet's revision 2
    assert caught.value.reason is PolicyFailure.RESTORED
    assert "does not hold" in str(caught.value)
    install_bundle(troth_home, "acme", second.read_bytes(), clock=SystemClock())  # the operator
    assert _sign(troth_home, 3, fleet_holds_none=True)
