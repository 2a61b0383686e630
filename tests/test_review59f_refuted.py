"""Review 59f (short adversarial review of the lead's late fixes): attacks tried that did not
work, each a test that fails if the defence breaks."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import troth
from tests.support.cli import run
from tests.support.feeds import pages
from tests.test_review58b_release import _release, _remote_acme
from tests.test_review58e_feeds import NOW, _member_credential
from tests.test_review58g_verifier import AWAY
from tests.test_review59f_release import restored_beside_bolt
from tests.test_review59f_trace import other_logs_note, rolled_back
from troth.clock import FixedClock
from troth.credentials import CredentialChain
from troth.errors import CredentialError
from troth.node import init_node, open_node


def test_a_kept_file_of_another_log_does_not_hide_a_rollback(tmp_path: Path) -> None:
    """A kept file holding another node's genuine checkpoint (a path mixed up between two
    nodes' jobs), given to `troth trace verify` on a node whose log was rolled back below the
    checkpoint it accepted: refused as another log's note, exit 1, never `unanchored` (the
    node's accepted checkpoint unread), and the file is not replaced."""
    kept = other_logs_note(tmp_path)
    note = kept.read_bytes()
    rolled_back(tmp_path)
    said = run("trace", "verify", "--checkpoint", str(kept), code=1).stderr
    assert "checkpoint invalid (the kept checkpoint: origin" in said
    assert kept.read_bytes() == note


def test_an_empty_kept_file_does_not_hide_a_rollback(tmp_path: Path) -> None:
    """A kept file that exists but is empty (a full disk, a `touch` in a set-up script) on a
    node whose log was rolled back: refused, exit 1, not `unanchored`."""
    rolled_back(tmp_path)
    kept = tmp_path / "empty.note"
    kept.write_bytes(b"")
    result = run("trace", "verify", "--checkpoint", str(kept), code=1)
    assert "unanchored" not in result.stdout + result.stderr


def test_a_dangling_symlink_kept_file_is_compared_with_the_accepted_one(tmp_path: Path) -> None:
    """A kept file that is a symlink to nowhere (nothing kept yet) on a node whose log was
    rolled back: compared with the node's accepted checkpoint (review 58w, cli 3), exit 1."""
    rolled_back(tmp_path)
    kept = tmp_path / "link.note"
    kept.symlink_to(tmp_path / "nowhere" / "x.note")
    said = run("trace", "verify", "--checkpoint", str(kept), code=1).stderr
    assert "log is shorter than the anchored checkpoint (anchored at 2, the log has 1)" in said


def test_a_feed_signed_ahead_elsewhere_does_not_push_the_restore_hold(
    troth_home: Path, tmp_path: Path
) -> None:
    """An authority whose clock runs ahead (bolt signs its page 250 s ahead, within the skew)
    cannot date a restore's hold past when this node accepted its page: the held feed's date is
    capped at the node's clock then (docs/formats.md), so a member's own authority's feed
    pulled after the restore counts and `agent` is released with no vouch."""
    now = int(time.time())
    restored_beside_bolt(troth_home, tmp_path, signed=now + 250, accepted=now)
    _remote_acme(held_at=now + 10, pulled_at=now + 60)
    released = _release("agent")
    assert (released["released"], released["vouched"]) == (True, False)


def test_a_due_authority_refuses_its_own_chains_only_and_not_for_good(tmp_path: Path) -> None:
    """troth.Verifier fed by a node whose copy of y's feed a revocation made there left due a
    sync (y reached over the network: the Verifier's settling does not sync it): y's chains
    are refused, z's (another trusted authority, its feed held fresh) still verify; once the
    node's sync clears the mark (a running node's round), the same Verifier verifies y's chain
    again: the wait is per authority and ends with the sync, nothing of it kept."""
    (y, y_member, y_credential), (z, z_member, z_credential) = (
        _member_credential(),
        _member_credential(),
    )
    init_node("desk", home=tmp_path)
    with open_node("desk", home=tmp_path) as node:
        for authority in (y, z):
            node.wallet.trust(authority.identifier, AWAY, now=NOW - 20)
            page = pages(authority, [], now=NOW - 10, per_page=10)[0]
            node.wallet.update_feed(page, authority=authority.identifier, now=NOW - 10)
        mark = node.wallet.store.mark_sync_due(y.identifier.digest, AWAY, NOW - 5)
    y_chain = CredentialChain((y_credential,), (y.identity.history,)).encode()
    z_chain = CredentialChain((z_credential,), (z.identity.history,)).encode()
    with troth.Node.open("desk", home=tmp_path, create=False) as desk:
        trust = [y.identifier, z.identifier]
        verifier = troth.Verifier(trust=trust, feeds=desk, clock=FixedClock(NOW))
        with pytest.raises(CredentialError):
            verifier.verify(y_chain, presenter=y_member.identifier)
        assert verifier.verify(z_chain, presenter=z_member.identifier).actor == z_member.identifier
        with open_node("desk", home=tmp_path) as node:
            node.wallet.store.clear_sync_due(y.identifier.digest, mark)
        assert verifier.verify(y_chain, presenter=y_member.identifier).actor == y_member.identifier
