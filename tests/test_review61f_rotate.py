"""Review 61f (performance of identity.rotate, benchmarks/README.md "Pass 61f"): what a
rotation's cheaper statements must keep.

1. Every dated bump of the rollback guard (each rotation: troth.identity.restored) ran
   `CREATE TABLE IF NOT EXISTS rollback_raised` before keeping its raise time there (review
   60n, crash 1). The table is made once per node.db now: the time's UPSERT runs first, and
   only a missing table (a node.db from before it, or such a copy put in its place under a
   running process) makes it, in the same transaction. The time is still kept in every case,
   and any other failure of the statement is raised as before.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from troth.errors import StorageError
from troth.identity.restored import RestoredIdentities
from troth.node import init_node, open_node
from troth.storage import SqliteDatabase
from troth.storage.rollback import RollbackGuard

NOW = 1_790_000_000
T = 1_796_000_000


def _statements(db: SqliteDatabase) -> list[str]:
    """Every statement this thread's connection of `db` runs from now on."""
    seen: list[str] = []
    db.connection().set_trace_callback(seen.append)
    return seen


def _raised_at(db: SqliteDatabase) -> int | None:
    row = db.fetch_one("SELECT raised_at FROM rollback_raised WHERE scope = 'identity'")
    return None if row is None else int(row[0])


def test_a_rotation_makes_no_table(tmp_path: Path) -> None:
    """1: a rotation after the node's first runs no CREATE TABLE (one did at each rotation),
    and still keeps its raise time in node.db."""
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        node.identities.create(now=NOW, name="a")
        node.identities.rotate("a", now=NOW + 1)
        seen = _statements(node.db)
        node.identities.rotate("a", now=NOW + 2)
        node.db.connection().set_trace_callback(None)
        assert seen[0] == "BEGIN IMMEDIATE"
        assert seen[-1] == "COMMIT"
        assert not [s for s in seen if s.startswith("CREATE")]
        assert sum(s.startswith("INSERT INTO rollback_raised") for s in seen) == 1
        assert _raised_at(node.db) is not None


def test_a_missing_table_is_made_in_the_bump(tmp_path: Path) -> None:
    """1: the first dated bump of a node.db without the table makes it, in the bump's
    transaction, and keeps the time (the next one raises it, never lowers it)."""
    db = SqliteDatabase(tmp_path / "node.db")
    restores = RestoredIdentities(db)
    with db.transaction():
        restores.count_rotation(T)
    assert _raised_at(db) == T
    db.execute("DROP TABLE rollback_raised")
    with db.transaction():
        restores.count_rotation(T + 5)  # the same object: no memory that the table was there
    assert _raised_at(db) == T + 5
    with db.transaction():
        restores.count_rotation(T + 1)
    assert _raised_at(db) == T + 5
    assert RollbackGuard(db, "identity").raised_at() == T + 5
    db.close()


def test_another_failure_of_the_time_is_raised(tmp_path: Path) -> None:
    """1: only "no such table: rollback_raised" makes the table: a failure of another kind
    (here a table of that name whose columns are not the ones written) is raised, nothing
    made or kept."""
    db = SqliteDatabase(tmp_path / "node.db")
    db.execute("CREATE TABLE rollback_raised (scope TEXT PRIMARY KEY, other INTEGER)")
    with pytest.raises(StorageError, match="raised_at"), db.transaction():
        RestoredIdentities(db).count_rotation(T)
    assert db.fetch_one("SELECT count(*) FROM rollback_counters")[0] == 0
    db.close()
