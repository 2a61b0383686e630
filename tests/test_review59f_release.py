"""Review 59f (short adversarial review of the lead's late fixes), release: a restore's hold is
dated no earlier than the newest feed node.db holds was issued (review 58g, release 1:
`troth.identity.restored`), so that with the clock behind at the find the copy's own feeds do
not count as issued after the hold. That newest feed may be another authority's than the one
whose feed must tell: one dated ahead (accepted while this machine's clock was ahead, its
signer on the same machine) holds every identity until that date, whatever its own
authority's feed says."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.backups import copy_db, node_db, restore_db
from tests.support.cli import run
from tests.test_review58b_release import REMOTE, _release, _remote_acme
from tests.test_review58g_release import _acme_and_agent
from troth.node import open_node

DAY = 86_400


def restored_beside_bolt(home: Path, scratch: Path, *, signed: int, accepted: int) -> None:
    """Authorities acme and bolt; node `agent` (its identity enrolled with acme, and `aide`)
    holding bolt's feed, signed at `signed` and accepted at `accepted`; node.db copied, `aide`
    rotated (what the restore's guard counts), the copy put back."""
    _acme_and_agent(scratch, member="agent")
    run("authority", "create", "bolt")
    with open_node("bolt") as bolt, open_node("agent") as agent:
        host = bolt.authority()
        agent.wallet.trust(host.identifier, REMOTE, now=accepted)
        agent.wallet.sync_feed(
            host.identifier, lambda since: host.feed(now=signed, since=since), now=accepted
        )
    copy_db(node_db(home, "agent"), scratch / "agent.db")
    run("identity", "rotate", "aide", "--node", "agent")
    restore_db(node_db(home, "agent"), scratch / "agent.db")


def test_restore1_another_authoritys_feed_dated_ahead_does_not_hold_a_member(
    troth_home: Path, tmp_path: Path
) -> None:
    """review 59f, restore 1: node `agent` (its identity a member of acme) once synced the feed
    of `bolt`, an authority on the same machine, while the machine's clock was a day ahead
    (both dates a day ahead: the page's signed date and when the node accepted it). node.db
    copied, another identity rotated, the copy put back; the restore found now. acme's feed
    pulled a minute later (a running node's round) postdates the copy, but the hold was
    dated a day ahead (the newest feed node.db holds, bolt's): `agent` was refused until
    then, or the operator's vouch, which waives the evidence the release is for. Fixed
    (identity/restored.py, node/release.py): a feed counts when issued after the hold and
    after the copy's own feed of its authority, not the newest of any authority's."""
    now = int(time.time())
    restored_beside_bolt(troth_home, tmp_path, signed=now + DAY, accepted=now + DAY)
    _remote_acme(held_at=now, pulled_at=now + 60)
    released = _release("agent")
    assert released["released"] is True
    assert released["vouched"] is False
