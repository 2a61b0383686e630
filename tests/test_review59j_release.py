"""Review 59j (short adversarial review of the lead's late fixes), release: a held feed now
counts when issued after the hold and after the restored copy's own feed of its authority
(review 59f, restore 1; `troth.identity.restored.copy_feed_issued`), and the hold is dated by
the clock alone.

1. With the clock behind at the find (review 58g, release 1's case) the copy's own feed is
   issued after the hold: still refused (right), but the refusal said "no feed issued after the
   hold (H)" and "the feed of it held was issued at F, before the hold" with F later than H:
   false, and it hid the reason (the feed held is the copy's own, or no later than it).
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_review58b_release import _release, _remote_acme, restored_member


def test_release1_a_copys_feed_after_a_hold_found_behind_is_not_said_before_it(
    troth_home: Path, tmp_path: Path
) -> None:
    now = restored_member(troth_home, tmp_path)
    _remote_acme(held_at=now - 3600)
    refused = _release("agent", code=1)["message"]
    held = re.search(r"the feed of it held was issued at (\d+)", refused)
    assert held is not None, refused
    assert int(held.group(1)) > now - 3600  # after the hold: the copy's own
    assert "before the hold" not in refused, refused
    assert "not after the restored copy's own feed of it" in refused, refused
