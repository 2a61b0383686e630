"""Review 72b (area: holds): attacks on the restore holds' rows that did not work."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.backups import node_db, restore_db, thief_copy
from tests.test_review57i_restore import _restored_after_rotation
from tests.test_review58b_release import _release, _remote_acme
from tests.test_review72b_release import early_hold, edit, member_copied
from troth.errors import StorageError
from troth.node import open_node


def test_a_hold_planted_early_in_the_copy_does_not_date_the_release(
    troth_home: Path, tmp_path: Path
) -> None:
    """Tried (72b): a copy of node.db put back that already holds an `identity_restore_holds`
    row for `helper` dated 0 (a copy taken while held, or one edited before it was put back:
    the restore kept the earliest hold until 72b release 6) and its `feed_state`
    dates lowered to 0 (the restore keeps them as the copy's own feeds' dates), so that a
    page of acme's feed issued just after the rotation the copy lacks, before the margin (a
    page captured then and handed in again), postdates both. Refused: the floor is the
    rollback guard's date of that rotation and its margin, which the copy does not hold
    (review 60a, release 1), and the hold is dated by this restore (release 6); the vouch
    still releases it."""
    helper, copy = member_copied(troth_home, tmp_path, rotated_after=True)
    edit(copy, *early_hold(helper), ("UPDATE feed_state SET issued_at = 0", ()))
    restore_db(node_db(troth_home, "agent"), copy)
    now = int(time.time())
    _remote_acme(held_at=now + 1, pulled_at=now + 3)
    with open_node("agent") as agent:
        assert agent.identities.restore_held("helper") == now + 1  # dated again (release 6)
    refused = _release("helper", code=1)["message"]
    assert "after the last rotation the restored copy lacks" in refused, refused
    assert _release("helper", "--vouch-not-rotated")["released"] is True


def test_two_holds_for_one_identity_in_the_copy_release_nothing(troth_home: Path) -> None:
    """Tried (72b): a copy of node.db put back whose `identity_restore_holds` was made again
    without its key, holding two rows for `clerk` (dated 0 and TEXT), so that the restore's
    holds (`ON CONFLICT (identifier)`) or the read of one row
    (`fetch_one`) would take the weaker. Nothing signs: the restore cannot be recorded on
    that table (its conflict clause named a key the table lacks; since review 72k, holds2 5,
    a table the restore writes made as troth never makes it is refused first; since 74c
    planted6 1, at the restore's check, a lazily made table keyed otherwise), so every
    identity is refused (StorageError, node.db damaged), fail closed, `clerk` and the rotated
    `courier` alike."""
    path = _restored_after_rotation(troth_home)
    with open_node("laptop") as node:
        clerk = node.identities.find("clerk").identifier
    edit(
        path,
        ("CREATE TABLE identity_restore_holds (identifier BLOB, held_at INTEGER)", ()),
        ("INSERT INTO identity_restore_holds VALUES (?, 0)", (clerk,)),
        ("INSERT INTO identity_restore_holds VALUES (?, 'x')", (clerk,)),
    )
    with open_node("laptop") as node:
        for name in ("clerk", "courier"):
            with pytest.raises(StorageError, match=r"restored copy holding.*identity_restore_h"):
                node.identities.signer(name, now=NOW + 30)


def test_a_copys_feed_dated_ahead_is_no_evidence(troth_home: Path, tmp_path: Path) -> None:
    """Tried (72b): a copy put back (its guard lost: no rotation dated) whose `feed_state`
    dates acme's feed ten days ahead (edited before it was put back), so that the copy's own
    feed, held as it says, postdates the hold. Refused: that date is also what the restore
    keeps as the copy's own feed's (`copy_feed_issued`, from the same column), and only a
    feed issued after it counts; the vouch releases it."""
    _, copy = member_copied(troth_home, tmp_path, rotated_after=False)
    now = int(time.time())
    edit(copy, ("UPDATE feed_state SET issued_at = ?", (now + 10 * 86_400,)))
    thief_copy(node_db(troth_home, "agent"), copy)
    _remote_acme(held_at=now + 100)
    refused = _release("helper", code=1)["message"]
    assert "not after the restored copy's own feed of it" in refused, refused
    assert _release("helper", "--vouch-not-rotated")["released"] is True
