"""Review 72k (area: holds2): attacks on 72b's restore-hold fixes that did not work."""

from __future__ import annotations

import time
from pathlib import Path

from tests.conftest import NOW
from tests.support.backups import copy_db, node_db, restore_db, restores_found, thief_copy
from tests.test_review57i_restore import _restored_after_rotation
from tests.test_review58b_release import _release
from tests.test_review72b_release import early_hold, edit, member_copied
from tests.test_review72k_holds2 import DAY
from troth.cli.node_cmds import _restored
from troth.node import open_node


def test_a_restore_of_a_restore_keeps_the_later_hold_and_counts_every_identity_held(
    troth_home: Path,
) -> None:
    """Tried (72k): a restore of a copy taken while an earlier restore held `courier` (its row
    dated `NOW + 100`), found with the clock behind (`NOW + 50`), to date that hold early
    (72b release 6's max() taken the other way), and the restore's `voided` (72b unsure: the
    DO UPDATE rows counted now) to overstate or understate what is held. `courier` keeps the
    later time, `clerk` (released after the first restore, rotated after the copy) is held
    at this one's; `voided` is 2, the identities held (the copy's held one counted too: with
    DO NOTHING it was 1 while 2 were held), as `troth node status` says; nothing decides on
    it but the policy scope's key (troth.node.services.policy_hold)."""
    path = _restored_after_rotation(troth_home)
    with open_node("laptop") as node:
        assert node.identities.check_restored(NOW + 100) is not None
        assert node.identities.release_restored("clerk", now=NOW + 100)
    copy_db(path, troth_home / "again.db")  # `courier` held in it, `clerk` not
    with open_node("laptop") as node:
        node.identities.rotate("clerk", now=NOW + 110)
    restore_db(path, troth_home / "again.db")
    with open_node("laptop") as node:
        assert node.identities.check_restored(NOW + 50) is not None
        assert node.identities.restore_held("courier") == NOW + 100
        assert node.identities.restore_held("clerk") == NOW + 50
    (found,) = restores_found(path)
    assert (found.scope, found.voided, found.at) == ("identity", 2, NOW + 50)
    assert "2 identity(ies) held" in str(_restored([found.to_json()]))


def test_a_hold_dated_far_ahead_is_released_by_a_pull_on_this_machine(
    troth_home: Path, tmp_path: Path
) -> None:
    """Tried (72k): a copy holding `helper`'s hold dated ten days ahead (kept by 72b release
    6's max()), to hold it until then but for the vouch. The pull the release makes from the
    node hosting acme on this machine is after the hold whatever its date says (it is made
    now, by the release): released, not vouched. A future time is not read as damaged: a
    damaged one lets no held feed count ever, one ahead only until its date."""
    helper, copy = member_copied(troth_home, tmp_path, rotated_after=False)
    far = int(time.time()) + 10 * DAY
    edit(copy, *early_hold(helper, far))
    thief_copy(node_db(troth_home, "agent"), copy)
    done = _release("helper")
    assert (done["released"], done["vouched"], done["held_at"]) == (True, False, far)
    assert [(f["fresh"], f["pulled"]) for f in done["feeds"]] == [(True, True)]
