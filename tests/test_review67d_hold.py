"""Review 67d, hold: a second review of the policy signing hold after a restore (reviews 66b,
66o, 66x, 66c2, 66e2) and of the hold a failed re-revoke puts on the hosted authority.

hold 1 (low: the operator cannot do what the hold asks) When the hosted authority's store went
  back past the feed the hub held and revoking again what it lost failed for good (the feed's
  entry limit reached, an entry over its size limit), the authority was held (review 65z,
  hold 1) and `troth authority release-restored` asked the operator to "revoke again what
  was revoked after the copy" and to say so with `--revoked-again`; but what that was lived
  only in the hub's memory (the feed it held, dropped at the hold) and in a log line that
  counted nothing: once held, no process, the hub's included, could tell it, so the operator
  gave her word blind, and whatever she did not revoke again was admitted again by every
  node syncing the feed. Now the hold records, in its transaction, each identity,
  credential and supersession the store's line lost (table `authority_revoke_again`, made on
  first use), `Authority.to_revoke_again` reads it, the refusal of `troth authority
  release-restored` names them (all of them with --json), and the release deletes them.

hold 2 (low: the operator's word given unawares) `troth policy push` of the bundle a restore
  held back (the documented way to let it decide again) also ended the signing hold, as the
  operator's word that it is the fleet's newest (the hold's way out: docs/policy.md, "A
  restored node.db"), and said nothing of it: an operator confirming the copy's revision 1
  then signed "one up", revision 2, beside the fleet's revision 2. Pushing the fleet's
  newest is the only way out on a node whose copy held the fleet's newest, so the push stays
  the word (the lead's question: an older or equal bundle pushed lifts it only as that word);
  now the push says so: `signing_hold_ended` in its result and a warning naming what the word
  was (and the error of a push the running node could not be told of).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.backups import copy_db, feed_gone_back, node_db, restore_db
from tests.support.cli import run_json
from tests.support.histories import encode, honest_history
from tests.test_review45f_policy import bundles
from troth import limits
from troth.clock import SystemClock
from troth.errors import StorageError
from troth.identity import verify_history
from troth.node import init_node, open_node
from troth.node.services.policy import install_bundle
from troth.node.trust import NodeTrust


def restored_hub(home: Path, tmp: Path) -> tuple[Path, Path]:
    """Node acme holding revisions 1 then 2 of its authority's bundle, put back from a copy
    (`tmp`/copy.db) holding revision 1 (held back); the two bundle files."""
    first, second = bundles(home, tmp)
    path, copy = node_db(home, "acme"), tmp / "copy.db"
    install_bundle(home, "acme", first.read_bytes(), clock=SystemClock())
    copy_db(path, copy)
    install_bundle(home, "acme", second.read_bytes(), clock=SystemClock())
    restore_db(path, copy)
    return first, second


def test_hold1_a_failed_re_revoke_keeps_what_must_be_revoked_again(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """m1 revoked, the store gone back past it, the feed full: the hold names m1 once the hub
    is gone, in the refusal to release, and the release forgets it."""
    init_node("acme")
    with open_node("acme") as node:
        authority = node.create_authority("acme", now=NOW)
        m1 = verify_history(encode(honest_history(1, start=NOW - 10).changes), now=NOW)
        m2 = verify_history(encode(honest_history(1, start=NOW - 9).changes), now=NOW)
        start = authority.held_feed(now=NOW)
        trust = NodeTrust(node, authority)
        trust.reload(NOW)
        authority.revoke_identity(m1.identifier, now=NOW)
        assert trust.refresh_hosted(NOW)
        feed_gone_back(authority, start.count)
        authority.revoke_identity(m2.identifier, now=NOW)
        count, _ = authority.store.revocation_tip()
        monkeypatch.setattr(limits, "MAX_FEED_ENTRIES", count)  # the re-revoke cannot write
        trust.refresh_hosted(NOW)
        trust.detach()
        assert authority.restore_held() is not None
    refused = run_json("authority", "release-restored", "--authority", "acme", code=1)
    assert refused["revoke_again"]["identities"] == [str(m1.identifier)]
    assert str(m1.identifier) in refused["message"]
    released = run_json("authority", "release-restored", "--authority", "acme", "--revoked-again")
    assert released["released"] is True
    with open_node("acme") as node:
        assert node.authority().to_revoke_again() == {
            "identities": [],
            "credentials": [],
            "supersessions": [],
        }


def test_hold2_pushing_the_held_back_bundle_says_it_ends_the_signing_hold(
    troth_home: Path, tmp_path: Path
) -> None:
    first, _ = restored_hub(troth_home, tmp_path)  # revision 1 held back
    confirmed = run_json("policy", "push", str(first), "--node", "acme")
    assert confirmed["signing_hold_ended"] is True
    assert any("fleet's newest" in warning for warning in confirmed["warnings"])
    again = run_json("policy", "push", str(first), "--node", "acme")  # no hold left to end
    assert again["signing_hold_ended"] is False


def test_hold2_a_push_the_running_node_missed_says_it_too(
    troth_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The push stored, the running node not told (its socket gone): the error says the word
    was taken as well."""
    import troth.node.daemon

    first, _ = restored_hub(troth_home, tmp_path)

    def gone(*_: object) -> None:
        raise OSError("the control socket went away")

    monkeypatch.setattr(troth.node.daemon, "node_status", lambda *_: {"running": True})
    monkeypatch.setattr(troth.node.daemon, "control", gone)
    with pytest.raises(StorageError) as caught:
        install_bundle(troth_home, "acme", first.read_bytes(), clock=SystemClock())
    assert "could not be told" in str(caught.value)
    assert "fleet's newest" in str(caught.value)
