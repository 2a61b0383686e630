"""Review 67l, a review of 67f's leases revoked by a compromised rotation and of 67d's list of
what a held authority must revoke again.

revoke 1 (low: a misleading refusal on the operator's path out of a restore) A node.db copied
  while its authority was held by a failed re-revoke carries that hold's list
  (`authority_revoke_again`). Put back later, the restore is found and held (what the copy
  lacks cannot be known: docs/storage.md, "A restore found records none"), but the refusal of
  `troth authority release-restored` named the copy's stale list as "what its feed lost" (and
  `--json`'s `revoke_again`): the operator revoking again only those, then giving her word,
  let every member revoked after the copy in again. The restore's transaction now drops the
  list with the tickets it uses up: the refusal names nothing it cannot know.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.backups import copy_db, feed_gone_back, node_db, restore_db
from tests.support.cli import run_json
from tests.support.histories import encode, honest_history
from troth import limits
from troth.authority import Authority
from troth.identity import VerifiedIdentity, verify_history
from troth.node import init_node, open_node
from troth.node.trust import NodeTrust


def member(offset: int) -> VerifiedIdentity:
    """A member's verified history, made `offset` seconds before NOW."""
    return verify_history(encode(honest_history(1, start=NOW - offset).changes), now=NOW)


def held_by_a_failed_re_revoke(
    authority: Authority,
    node_trust: NodeTrust,
    lost: VerifiedIdentity,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`lost` revoked, the store gone back past it, the feed full: the authority held, `lost`
    listed to revoke again (as tests/test_review67d_hold.py holds it)."""
    start = authority.held_feed(now=NOW)
    authority.revoke_identity(lost.identifier, now=NOW)
    assert node_trust.refresh_hosted(NOW)
    feed_gone_back(authority, start.count)
    authority.revoke_identity(member(9).identifier, now=NOW)
    count, _ = authority.store.revocation_tip()
    with monkeypatch.context() as patched:
        patched.setattr(limits, "MAX_FEED_ENTRIES", count)  # the re-revoke cannot write
        node_trust.refresh_hosted(NOW)
    assert authority.restore_held() is not None


def test_revoke1_a_restored_copy_names_no_stale_list_to_revoke_again(
    troth_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_node("acme")
    m1, m3 = member(10), member(8)
    with open_node("acme") as node:
        authority = node.create_authority("acme", now=NOW)
        node_trust = NodeTrust(node, authority)
        node_trust.reload(NOW)
        held_by_a_failed_re_revoke(authority, node_trust, m1, monkeypatch)
        node_trust.detach()
    path, copy = node_db(troth_home, "acme"), tmp_path / "copy.db"
    copy_db(path, copy)  # taken while held, m1 listed
    run_json("authority", "release-restored", "--authority", "acme", "--revoked-again")
    with open_node("acme") as node:  # the operator revokes m1 again, and m3 after the copy
        node.authority().revoke_identity(m1.identifier, now=NOW + 1)
        node.authority().revoke_identity(m3.identifier, now=NOW + 2)
    restore_db(path, copy)
    refused = run_json("authority", "release-restored", "--authority", "acme", code=1)
    assert "what its feed lost" not in refused["message"], refused["message"]
    assert refused["revoke_again"] == {"identities": [], "credentials": [], "supersessions": []}
