"""Review 67q, a review of 67l's revocation recorded due for a compromised rotation and of its
`authority_revoke_again` list dropped by a restore.

again 1 (medium: revoked members admitted again after a restore) A node.db copied while its
  authority was held by a failed re-revoke carries that hold's list (`authority_revoke_again`:
  members revoked before the copy whom the copy's feed lacks). 67l (revoke 1) dropped the list
  in the restore's transaction (`SqliteAuthorityStore._fail_closed`), so the refusal of `troth
  authority release-restored` told the operator only to revoke again "what was revoked after
  the copy was taken": the list's members, revoked before the copy and absent from its feed,
  were admitted again by every node syncing the feed once she gave her word. The list is kept,
  and the refusal names it as what the feed lost before, beside what was revoked after the
  copy (not as all of it, 67l's concern).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.backups import copy_db, node_db, restore_db
from tests.support.cli import run_json
from tests.test_review67l_revoke import held_by_a_failed_re_revoke, member
from troth.node import init_node, open_node
from troth.node.trust import NodeTrust


def test_again1_a_copy_taken_while_held_still_names_what_its_feed_lost_before(
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
    copy_db(path, copy)  # taken while held: m1, revoked before it, lost from its feed
    with open_node("acme") as node:  # after the copy, m3 revoked
        node.authority().revoke_identity(m3.identifier, now=NOW + 2)
    restore_db(path, copy)
    refused = run_json("authority", "release-restored", "--authority", "acme", code=1)
    with open_node("acme") as node:  # the copy's feed lacks m1: only a revocation again ends it
        store = node.authority().store
        found = store._db.fetch_one(  # type: ignore[attr-defined]
            "SELECT 1 FROM revocations WHERE target = ?", (m1.identifier.digest,)
        )
        assert found is None
    assert refused["revoke_again"]["identities"] == [str(m1.identifier)]
    assert str(m1.identifier) in refused["message"]
