"""Review 59j (short adversarial review of the lead's late fixes), release: a held feed now
counts when issued after the hold and after the restored copy's own feed of its authority
(review 59f, restore 1; `troth.identity.restored.copy_feed_issued`), and the hold is dated by
the clock alone.

1. With the clock behind at the find (review 58g, release 1's case) the copy's own feed is
   issued after the hold: still refused (right), but the refusal said "no feed issued after the
   hold (H)" and "the feed of it held was issued at F, before the hold" with F later than H:
   false, and it hid the reason (the feed held is the copy's own, or no later than it).
2. A hold found with the clock behind is dated early; the copy's own feed of the authority is
   no later than the copy. A page of that authority's feed signed between the copy and the
   rotation (a capture, replayed to the node's sync once its clock was corrected: what
   docs/vault.md says "keeps its date and counts for nothing") is issued after both, so it
   counted, and the identity rotated (compromised) after the copy was released and signed
   with its retired keys. Review 58g's fix (the hold dated by the copy's newest feed) let it
   count as well.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.support.backups import copy_db, node_db, restore_db
from tests.support.cli import run
from tests.test_review57i_restore import _refused
from tests.test_review58b_release import _release, _remote_acme, restored_member
from tests.test_review58g_release import _acme_and_agent
from troth.node import open_node


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


def test_release2_a_capture_replayed_after_a_hold_found_behind_releases_nothing(
    troth_home: Path, tmp_path: Path
) -> None:
    _acme_and_agent(tmp_path, member="aide")
    copy_db(node_db(troth_home, "agent"), tmp_path / "agent.db")
    now = int(time.time())
    with open_node("acme") as acme:  # captured before aide's rotation
        captured = acme.authority().feed(now=now + 1, since=0)
    run("identity", "rotate", "aide", "--compromised", "--node", "agent")
    restore_db(node_db(troth_home, "agent"), tmp_path / "agent.db")
    _remote_acme(held_at=now - 3600)  # found with the clock an hour behind
    with open_node("agent") as agent:  # the clock corrected; the capture replayed to a sync
        authority = next(iter(agent.wallet.trusted()))
        agent.wallet.update_feed(captured, authority=authority, now=now + 200)
    refused = _release("aide", code=1)["message"]
    assert "not released" in refused, refused
    with open_node("agent") as agent:
        _refused(lambda: agent.identities.signer("aide", now=int(time.time())))
