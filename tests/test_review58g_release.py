"""Review 58g, release: the checked release of a restore's hold (troth.node.release).

1. A held feed counts as evidence when its `issued_at` is after `held_at`, the node's clock
   when the restore was found. The copy's own feeds are dated before the copy was taken only
   by the clocks of then: a restore found while the node's clock was behind (a machine that
   boots with a reset clock and starts its node before NTP corrects it: `held_at` decades, or
   an hour, early) dates the hold before the copy's own feeds, and every one of them then
   counts as issued after the hold. An identity rotated (compromised, announced) after the
   copy was taken was released with no feed pulled and no vouch, and signed with the retired
   keys: what review 58b, release 1 closed, back whenever the clock was behind at the find.
2. The evidence asked for is the feed of each trusted authority the identity holds a
   credential from. An authority publishes the rotations of its members only (its `rotated`
   request refuses anyone else: docs/credentials.md, "Supersessions cover members"), so for an
   identity holding only a delegation (a local agent its node's member delegated to) no feed
   can ever show its rotation: yet the feed, pulled now, counted as evidence, and a delegate
   rotated (compromised) after the copy was taken was released with no vouch, its rotation's
   announcement having been refused ("not a member of this authority").
3. Likewise for a member removed after the copy was taken (every credential of it revoked):
   the authority refuses its rotation's announcement (no member now), yet its feed, pulled
   after the hold, counted, and a removed member rotated (compromised) since was released.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.backups import copy_db, node_db, restore_db
from tests.support.cli import run
from tests.test_review57i_restore import _refused
from tests.test_review58b_release import _release, _remote_acme, restored_member
from troth.identity import Identifier
from troth.node import open_node


def still_held(name: str, *said: str) -> None:
    """The release of `name` refused, saying each of `said`; it still signs nothing."""
    refused = _release(name, code=1)["message"]
    assert all(text in refused for text in said), refused
    with open_node("agent") as agent:
        _refused(lambda: agent.identities.signer(name, now=int(time.time())))


def test_a_hold_found_with_the_clock_behind_does_not_make_the_copys_feeds_fresh(
    troth_home: Path, tmp_path: Path
) -> None:
    """The restore found with the clock an hour behind; acme remote, nothing pulled since:
    `aide` (rotated after the copy) and `agent` are both refused."""
    now = restored_member(troth_home, tmp_path)
    _remote_acme(held_at=now - 3600)
    for name in ("aide", "agent"):
        still_held(name, "not released")


def _acme_and_agent(scratch: Path, *, member: str) -> None:
    """Authority `acme`; node `agent` with identities `agent` and `aide`; `member` enrolled."""
    run("authority", "create", "acme")
    run("node", "create", "agent")
    run("identity", "create", "aide", "--node", "agent")
    ticket = run("authority", "ticket", "create", "--authority", "acme", "--attr", "t.n=x")
    (scratch / f"{member}.ticket").write_text(ticket.stdout)
    run("enroll", str(scratch / f"{member}.ticket"), "--as", member, "--node", "agent")


def restored_delegate(home: Path, scratch: Path) -> None:
    """Authority `acme`; node `agent` with its own identity enrolled with acme and `aide`, a
    local identity agent delegated to (no member of acme); node.db copied; `aide` rotated
    (compromised); the copy put back."""
    _acme_and_agent(scratch, member="agent")
    chain = scratch / "aide.chain"
    # 30 min: the member credential lasts 1 h from its issue, so a 1 h delegation made a
    # second later outlives it and is refused (review 59j: this test failed so, now and then)
    run(
        "credential",
        "delegate",
        "--as",
        "agent",
        "--to",
        "aide",
        "--attr",
        "t.n=x",
        "--ttl",
        "30m",
        "--purpose",
        "help",
        "--out",
        str(chain),
        "--node",
        "agent",
    )
    run("credential", "import", str(chain), "--as", "aide", "--node", "agent")
    copy_db(node_db(home, "agent"), scratch / "agent.db")
    run("identity", "rotate", "aide", "--compromised", "--node", "agent")
    restore_db(node_db(home, "agent"), scratch / "agent.db")


def test_a_delegate_rotated_after_the_copy_is_not_released_by_its_authoritys_feed(
    troth_home: Path, tmp_path: Path
) -> None:
    """`aide` holds only agent's delegation from acme: its rotation is published in no feed
    (supersessions cover members), so acme's feed, pulled now, cannot tell: not released
    without the vouch."""
    restored_delegate(troth_home, tmp_path)
    still_held("aide", "it is a member of no authority this node trusts", "--vouch-not-rotated")


def test_a_removed_member_rotated_after_the_copy_is_not_released_by_that_feed(
    troth_home: Path, tmp_path: Path
) -> None:
    """`aide` enrolled with acme; node.db copied; acme removes aide, which then rotates
    (compromised: acme refuses the announcement, no member); the copy put back. acme's feed,
    pulled now, revokes aide's credential and cannot tell its rotation: not released."""
    _acme_and_agent(tmp_path, member="aide")
    copy_db(node_db(troth_home, "agent"), tmp_path / "agent.db")
    with open_node("agent") as agent:
        aide = str(Identifier(agent.identities.find("aide").identifier))
    run("authority", "members", "remove", aide, "--authority", "acme")
    run("identity", "rotate", "aide", "--compromised", "--node", "agent")
    restore_db(node_db(troth_home, "agent"), tmp_path / "agent.db")
    refused = _release("aide", code=1)["message"]
    assert "its feed revokes the identity's membership" in refused
