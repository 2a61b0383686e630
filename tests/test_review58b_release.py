"""Review 58b, release 1 (review 57v's, left as a strict xfail in tests/test_review57v_release.py):
`troth identity release-restored` judged a held identity by the feeds node.db holds, the
restored copy's, older than a rotation since: run first thing after putting node.db back, it
released an identity that WAS rotated (compromised, announced) after the copy was taken, which
then signed with the retired keys. A release now needs evidence fresher than the hold: every
trusted authority the identity holds a credential from has its feed pulled by the release from
this machine, or a feed of it issued after the hold is held; else it is refused, naming what to
do, or the operator vouches (`--vouch-not-rotated`, stated in the result) (troth.node.release)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from tests.support.backups import copy_db, node_db, restore_db
from tests.support.cli import run, run_json
from tests.test_review57i_restore import _refused
from troth.node import open_node
from troth.node.authorities import sync_from

REMOTE = "/tcp/127.0.0.1:9"


def restored_member(home: Path, scratch: Path) -> int:
    """Authority `acme`; node `agent` with its own identity `agent` and `aide`, both enrolled
    with acme; node.db copied; `aide` rotated (compromised: acme's feed announces it); the copy
    put back. `agent` was not rotated since the copy. The time then (no feed issued after)."""
    run("authority", "create", "acme")
    run("node", "create", "agent")
    run("identity", "create", "aide", "--node", "agent")
    for name in ("agent", "aide"):
        ticket = scratch / f"{name}.ticket"
        ticket.write_text(
            run("authority", "ticket", "create", "--authority", "acme", "--attr", "t.n=x").stdout
        )
        run("enroll", str(ticket), "--as", name, "--node", "agent")
    copy_db(node_db(home, "agent"), scratch / "agent.db")
    run("identity", "rotate", "aide", "--compromised", "--node", "agent")
    restore_db(node_db(home, "agent"), scratch / "agent.db")
    return int(time.time())


def _remote_acme(*, held_at: int, pulled_at: int | None = None) -> None:
    """The restore found at `held_at`; acme's feed pulled at `pulled_at` (as a running node's
    round would), then acme made remote (a route: the release pulls nothing itself)."""
    with open_node("acme") as acme, open_node("agent") as agent:
        assert agent.identities.check_restored(held_at) is not None
        if pulled_at is not None:
            sync_from(agent, acme.authority(), now=pulled_at)
        agent.wallet.trust(acme.authority().identifier, REMOTE, now=held_at)


def _release(name: str, *flags: str, code: int = 0) -> Any:
    return run_json("identity", "release-restored", name, "--node", "agent", *flags, code=code)


def test_release_pulls_the_feed_on_this_machine_and_releases_one_not_rotated(
    troth_home: Path, tmp_path: Path
) -> None:
    restored_member(troth_home, tmp_path)
    released = _release("agent")
    assert released["released"] is True
    assert released["vouched"] is False
    assert [(f["fresh"], f["pulled"]) for f in released["feeds"]] == [(True, True)]
    with open_node("agent") as agent:
        agent.identities.signer("agent", now=int(time.time())).sign(b"m")


def test_one_rotated_after_the_copy_is_refused_after_the_pull_even_vouched(
    troth_home: Path, tmp_path: Path
) -> None:
    restored_member(troth_home, tmp_path)
    for flags in ((), ("--vouch-not-rotated",)):
        refused = _release("aide", *flags, code=1)
        assert "rotated after the copy" in refused["message"]
    with open_node("agent") as agent:
        _refused(lambda: agent.identities.signer("aide", now=int(time.time())))


def test_no_feed_issued_after_the_hold_is_refused_naming_the_command(
    troth_home: Path, tmp_path: Path
) -> None:
    """acme remote, its held feed the copy's: refused; the pull to run is named (a node whose
    own identity is held does not start: for it, only the vouch)."""
    now = restored_member(troth_home, tmp_path)
    _remote_acme(held_at=now + 100)
    refused = _release("aide", code=1)["message"]  # (rotated: its feed not pulled either)
    assert "not released: no feed issued after the hold" in refused
    assert "troth node start agent" in refused
    own = _release("agent", code=1)["message"]
    assert "while the node's own identity is held" in own
    assert "troth identity release-restored agent --node agent --vouch-not-rotated" in own
    with open_node("agent") as agent:
        _refused(lambda: agent.identities.signer("agent", now=int(time.time())))


def test_a_feed_issued_after_the_hold_by_a_running_nodes_round_releases(
    troth_home: Path, tmp_path: Path
) -> None:
    now = restored_member(troth_home, tmp_path)
    _remote_acme(held_at=now + 50, pulled_at=now + 60)
    released = _release("agent")
    assert released["released"] is True
    assert released["vouched"] is False
    assert released["held_at"] == now + 50
    assert [(f["fresh"], f["pulled"], f["issued_at"]) for f in released["feeds"]] == [
        (True, False, now + 60)
    ]
    refused = _release("aide", "--vouch-not-rotated", code=1)["message"]
    assert "rotated after the copy" in refused


def test_the_vouch_releases_where_no_feed_can_tell_and_says_so(
    troth_home: Path, tmp_path: Path
) -> None:
    """acme's node gone from this machine (unreachable): refused, then released on the
    operator's stated word, the result saying so."""
    restored_member(troth_home, tmp_path)
    shutil.move(troth_home / "nodes" / "acme", tmp_path / "acme-away")
    refused = _release("agent", code=1)["message"]
    assert "no feed of it pulled" in refused
    released = _release("agent", "--vouch-not-rotated")
    assert released["released"] is True
    assert released["vouched"] is True
    assert [f["fresh"] for f in released["feeds"]] == [False]
    assert any("you vouched it was not" in warning for warning in released["warnings"])
    with open_node("agent") as agent:
        agent.identities.signer("agent", now=int(time.time())).sign(b"m")
