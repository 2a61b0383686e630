"""Review 54p, rollback 1: a node.db restored from a copy taken before a newer policy bundle
was installed brought the older bundle back unseen: the rollback guard counted only the
`authority` and `broker` scopes, so nothing found or recorded the restore, and a member's node
restored alone decided by the older bundle until its next successful pull (review 54h noted
it; troth.storage.rollback, docs/storage.md "Rollback guard")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.backups import copy_db, node_db, restore_db
from tests.test_review45f_policy import bundles
from troth.clock import SystemClock
from troth.node import open_node
from troth.node.services.policy import install_bundle, stored_bundles
from troth.storage.rollback import restored_rows


@pytest.mark.xfail(
    strict=True,
    reason="review 54p, rollback 1: a restored node.db brings an older policy bundle back "
    "unseen (the guard counts no bundle install)",
)
def test_a_copy_from_before_a_newer_bundle_is_found_and_decides_nothing(
    troth_home: Path, tmp_path: Path
) -> None:
    first, second = bundles(troth_home, tmp_path)
    clock = SystemClock()
    install_bundle(troth_home, "acme", first.read_bytes(), clock=clock)
    path, copy = node_db(troth_home, "acme"), tmp_path / "copy.db"
    copy_db(path, copy)
    install_bundle(troth_home, "acme", second.read_bytes(), clock=clock)
    restore_db(path, copy)
    shown = stored_bundles(troth_home, "acme", clock=clock)  # opens the node's bundles
    with open_node("acme", home=troth_home) as node:
        found = [row.to_json() for row in restored_rows(node.db)]
    assert [row["scope"] for row in found] == ["policy"]  # found, and recorded once
    assert not [bundle for bundle in shown if bundle["in_force"]]  # revision 1 decides nothing
