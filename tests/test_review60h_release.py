"""Review 60h: attacks on the release of a restore's hold dated by the rollback guard (review
60a, release 1: troth.node.release, docs/vault.md, "A node.db restored from before a
rotation") that worked."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.backups import copy_db, node_db, restore_db
from tests.support.cli import run
from tests.test_review58b_release import _release, _remote_acme
from troth.storage.rollback import decode_guard, encode_guard, guard_path

DAY = 86_400


def _restored_with_helper(home: Path, scratch: Path) -> int:
    """Authority `acme`; node `agent` with `helper` enrolled with acme; node.db copied, a
    rotation of another identity made since, the copy put back (as review 58b's
    `restored_member`); the time then."""
    run("authority", "create", "acme")
    run("node", "create", "agent")
    for name in ("helper", "aide"):
        run("identity", "create", name, "--node", "agent")
    ticket = scratch / "helper.ticket"
    ticket.write_text(
        run("authority", "ticket", "create", "--authority", "acme", "--attr", "t.n=x").stdout
    )
    run("enroll", str(ticket), "--as", "helper", "--node", "agent")
    copy_db(node_db(home, "agent"), scratch / "agent.db")
    run("identity", "rotate", "aide", "--node", "agent")
    restore_db(node_db(home, "agent"), scratch / "agent.db")
    return int(time.time())


def test_release1_a_guard_dated_ahead_says_no_feed_counts_until_then(
    troth_home: Path, tmp_path: Path
) -> None:
    """The last rotation was made while the clock was a month ahead (the guard's date never
    goes back: every restore found until then is dated by it). `helper` (not rotated since the
    copy) is refused on acme's feed pulled by the running node's round an hour after the hold,
    rightly; but the refusal must say why no feed can count (the date is ahead of this clock)
    and what releases it before then (a pull from this machine, or the vouch), not send the
    operator to start the node and run the release again, which fails the same way for a
    month."""
    now = _restored_with_helper(troth_home, tmp_path)
    path = guard_path(node_db(troth_home, "agent"))
    seq, counts = decode_guard(path.read_bytes())
    ahead = now + 30 * DAY
    path.write_bytes(encode_guard(counts, seq + 1, {"identity": ahead}))
    _remote_acme(held_at=now + 50, pulled_at=now + 3600)
    refused = _release("helper", code=1)["message"]
    assert f"dated {ahead}, ahead of this clock" in refused, refused
    assert "run this again" not in refused, refused
    assert "--vouch-not-rotated" in refused
    assert _release("helper", "--vouch-not-rotated")["released"] is True
