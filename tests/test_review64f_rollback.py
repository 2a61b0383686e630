"""Review 64f, the rollback guard (troth.storage.rollback; docs/storage.md, "Rollback guard"):
a node.db put in place that is not a copy of this node's own.

rollback 1 (low; fixed by review 64j, rollback 1: tests/test_review64j_rollback.py): the guard
says how many irreversible writes node.db made, never which node.db made them. The node.db of
another node (or another node's backup: an operator restoring the wrong directory, a thief's
from a node it controls) that counted at least as many writes in a scope as this node's guard
holds is taken as this node's current store: no restore found, nothing failed closed, and the
guard is raised to the stranger's count (crash window 2's repair), so this node's own later
copy, put back, reads as behind. Suggested fix: a random store id made with node.db's first
guarded write, kept in `rollback_counters` and in every guard slot (a guard version 4); a store
whose id is not its guard's is a restored copy of every scope it holds, failed closed as one
and said so (`restored` naming "another node's node.db").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.backups import copy_db, restore_db
from troth.storage import SqliteDatabase
from troth.storage.rollback import RollbackGuard, guard_path, read_guard

SCOPE = "authority"
"""The scope the two nodes count their writes in."""

__all__ = ["SCOPE", "two_nodes_fixture", "voided"]


def voided() -> int:
    """What a scope's owner fails closed on, counted."""
    return 3


@pytest.fixture(name="two_nodes")
def two_nodes_fixture(tmp_path: Path) -> tuple[Path, Path]:
    """node.db of node `mine` (2 writes counted, its guard beside it) and of node `other` (5)."""
    paths = []
    for name, writes in (("mine", 2), ("other", 5)):
        (tmp_path / name).mkdir()
        db = SqliteDatabase(tmp_path / name / "node.db")
        guard = RollbackGuard(db, SCOPE)
        for _ in range(writes):
            with db.transaction():
                guard.bump()
        db.close()
        paths.append(tmp_path / name / "node.db")
    return paths[0], paths[1]


def test_rollback_1_another_nodes_store_ahead_of_the_guard_is_found(
    two_nodes: tuple[Path, Path], tmp_path: Path
) -> None:
    """rollback 1: node `other`'s node.db (5 writes) put in place of `mine`'s (its guard at 2)
    is found and failed closed on, not taken as `mine`'s, its guard left as it was."""
    mine, other = two_nodes
    copy_db(other, tmp_path / "other-copy.db")
    restore_db(mine, tmp_path / "other-copy.db")
    db = SqliteDatabase(mine)
    try:
        found = RollbackGuard(db, SCOPE).check(NOW, voided)
    finally:
        db.close()
    assert found is not None
    assert found.voided == voided()
    assert read_guard(guard_path(mine)) == {SCOPE: 5}  # raised to the count the copy holds
