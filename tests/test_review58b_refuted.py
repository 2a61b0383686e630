"""Review 58b: attacks on the release of a restore's hold (troth.node.release) that did not work
(each a real attempt that fails if the defence breaks)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from click.testing import CliRunner

from tests.support.backups import copy_db, node_db, restore_db
from tests.support.cli import run, run_json
from tests.test_review57i_restore import _refused
from tests.test_review58b_release import _release, _remote_acme, restored_member
from troth.cli.main import cli
from troth.errors import CredentialError
from troth.node import open_node
from troth.node.authorities import sync_from


def test_a_page_issued_before_the_hold_stored_after_it_is_no_evidence(
    troth_home: Path, tmp_path: Path
) -> None:
    """A page of acme's feed signed before the hold (a capture replayed to a running node's
    sync) stored after the hold began: its signed date, not when it was stored, is judged."""
    now = restored_member(troth_home, tmp_path)
    with open_node("acme") as acme:
        captured = acme.authority().feed(now=now + 1, since=0)
    _remote_acme(held_at=now + 100)
    with open_node("agent") as agent:
        authority = next(iter(agent.wallet.trusted()))
        with contextlib.suppress(CredentialError):
            agent.wallet.update_feed(captured, authority=authority, now=now + 101)
        feed = agent.wallet.held_feed(authority)
        assert feed is not None
        assert feed.issued_at == now + 1
    refused = _release("agent", code=1)["message"]
    assert f"issued at {now + 1}, before the hold" in refused
    with open_node("agent") as agent:
        _refused(lambda: agent.identities.signer("agent", now=int(time.time())))


def test_a_fresh_feed_of_an_authority_the_identity_is_not_enrolled_with_counts_for_nothing(
    troth_home: Path, tmp_path: Path
) -> None:
    """A fresh feed of `beta` (which the identity holds no credential from) held beside acme's
    stale one: acme's word is still missing."""
    now = restored_member(troth_home, tmp_path)
    run("authority", "create", "beta")
    _remote_acme(held_at=now + 100)
    with open_node("beta") as beta, open_node("agent") as agent:
        sync_from(agent, beta.authority(), now=now + 200)
        held = agent.wallet.held_feed(beta.authority().identifier)
        assert held is not None
        assert held.issued_at == now + 200
        names = (str(beta.authority().identifier), str(next(iter(agent.wallet.trusted()))))
    refused = _release("agent", code=1)["message"]
    assert "no feed issued after the hold" in refused
    assert names[0] not in refused
    assert names[1] in refused


def test_the_vouch_is_not_reached_by_a_prefix(troth_home: Path, tmp_path: Path) -> None:
    """`--vouch` (an abbreviation) is no option: the vouch is spelt out."""
    restored_member(troth_home, tmp_path)
    result = CliRunner().invoke(
        cli, ["identity", "release-restored", "agent", "--node", "agent", "--vouch"]
    )
    assert result.exit_code == 2
    with open_node("agent") as agent:
        _refused(lambda: agent.identities.signer("agent", now=int(time.time())))


def test_the_feed_of_the_authority_this_node_hosts_is_no_evidence(
    troth_home: Path, tmp_path: Path
) -> None:
    """`desk`, enrolled with the authority its own node hosts, rotated after the copy: that
    feed, pulled now (dated now), is the restored node.db's own and lacks the rotation, so it
    counts for nothing; the refusal says why."""
    run("authority", "create", "acme")
    run("identity", "create", "desk", "--node", "acme")
    ticket = tmp_path / "desk.ticket"
    ticket.write_text(
        run("authority", "ticket", "create", "--authority", "acme", "--attr", "t.n=x").stdout
    )
    run("enroll", str(ticket), "--as", "desk", "--node", "acme")
    copy_db(node_db(troth_home, "acme"), tmp_path / "acme.db")
    run("identity", "rotate", "desk", "--compromised", "--node", "acme")
    restore_db(node_db(troth_home, "acme"), tmp_path / "acme.db")
    # the authority's own identity, not rotated: released on the operator's word, so its
    # feed is signed again (else the pull fails on its hold, and the test shows nothing)
    run("identity", "release-restored", "acme", "--node", "acme", "--vouch-not-rotated")
    refused = run_json("identity", "release-restored", "desk", "--node", "acme", code=1)
    assert "its feed here is the restored copy's" in refused["message"]
    with open_node("acme") as acme:
        _refused(lambda: acme.identities.signer("desk", now=int(time.time())))
