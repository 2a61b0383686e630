"""Review 66z: attacks on the rollback guard's raise time across the upgrade to schema 19 that
did not work (each test fails if the defence it names breaks).

- a guard written before the migration (node.db at 18) with node.db migrated to 19: the guard's
  format did not change; the check finds the store current and writes nothing to the guard, and
  a copy from before the last rotation is still found and dated by it;
- one scope's time never dates another's (the count's row is read by scope): a later time
  planted in another scope's row raises no `identity` time, and a restore of `identity` is
  dated by its own;
- the count's fallback (the column added) runs once per node.db: the next dated count is the
  rotation's 4 statements again, no ALTER attempted at each count;
- a check at equal counts whose time is the guard's does not write the guard, and a time past
  the cap is raised once (to the cap) and not again at each check.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from troth import limits
from troth.identity.restored import RestoredIdentities, last_rotation
from troth.storage import SqliteDatabase
from troth.storage.rollback import RollbackGuard, read_guard
from troth.storage.sqlite import _MIGRATIONS

T1, T2 = 1_790_000_000, 1_790_000_500


def _rotated(path: Path, *times: int) -> None:
    db = SqliteDatabase(path)
    for at in times:
        with db.transaction():
            RestoredIdentities(db).count_rotation(at)
    db.close()


def _as_schema_18(path: Path, legacy: int) -> None:
    """node.db as the troth before schema 19 left it (no column, its time in the old table)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("ALTER TABLE rollback_counters DROP COLUMN raised_at")
    conn.execute(
        "CREATE TABLE rollback_raised (scope TEXT PRIMARY KEY, raised_at INTEGER NOT NULL) "
        "WITHOUT ROWID"
    )
    conn.execute("INSERT INTO rollback_raised VALUES ('identity', ?)", (legacy,))
    conn.execute(f"PRAGMA user_version = {len(_MIGRATIONS) - 1}")
    conn.execute("COMMIT")
    conn.close()


def test_a_guard_from_before_the_migration(tmp_path: Path) -> None:
    path, copy = tmp_path / "node.db", tmp_path / "copy.db"
    _rotated(path, T1)
    shutil.copyfile(path, copy)
    _rotated(path, T2)
    _as_schema_18(path, T2)
    guard_path = tmp_path / "node.db.guard"
    before = guard_path.read_bytes()
    db = SqliteDatabase(path)  # migrated to 19
    guard = RollbackGuard(db, "identity")
    assert not guard.behind()
    assert guard_path.read_bytes() == before  # read as it was, nothing raised
    assert guard.raised_at() == T2
    db.close()
    shutil.copyfile(copy, path)
    db = SqliteDatabase(path)
    assert RestoredIdentities(db).check(T2 + 10) is not None
    assert last_rotation(db) == T2
    db.close()


def test_one_scopes_time_never_dates_another(tmp_path: Path) -> None:
    path, copy = tmp_path / "node.db", tmp_path / "copy.db"
    db = SqliteDatabase(path)
    with db.transaction():
        RollbackGuard(db, "policy").bump()
    db.close()
    _rotated(path, T1)
    shutil.copyfile(path, copy)
    _rotated(path, T2)
    conn = sqlite3.connect(path)
    with conn:  # a later time planted in the other scope's row, its count unchanged
        conn.execute(
            "UPDATE rollback_counters SET raised_at = ? WHERE scope = 'policy'", (T2 + 99,)
        )
    conn.close()
    db = SqliteDatabase(path)
    assert not RollbackGuard(db, "policy").behind()
    identity = RollbackGuard(db, "identity")
    assert not identity.behind()
    assert identity.raised_at() == T2
    db.close()
    shutil.copyfile(copy, path)
    db = SqliteDatabase(path)
    assert RestoredIdentities(db).check(T2 + 10) is not None
    assert last_rotation(db) == T2
    db.close()


def test_the_fallback_runs_once_per_node_db(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    _rotated(path, T1)
    db = SqliteDatabase(path)
    db.execute("ALTER TABLE rollback_counters DROP COLUMN raised_at")  # a copy put in place
    guard = RollbackGuard(db, "identity")
    seen: list[str] = []
    db.connection().set_trace_callback(seen.append)
    with db.transaction():
        guard.bump(T2)
    assert any(s.startswith("ALTER TABLE") for s in seen)
    seen.clear()
    with db.transaction():
        guard.bump(T2 + 1)
    assert len(seen) == 4  # BEGIN, the count, its read, COMMIT
    assert not any("ALTER" in s or "sqlite_master" in s for s in seen)
    db.close()


def test_a_check_at_equal_counts_writes_the_guard_at_most_once(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    _rotated(path, T1)
    guard_path = tmp_path / "node.db.guard"
    db = SqliteDatabase(path)
    guard = RollbackGuard(db, "identity")
    before = guard_path.read_bytes()
    assert not guard.behind()
    assert guard_path.read_bytes() == before  # the guard's time is node.db's: not written
    db.execute("UPDATE rollback_counters SET raised_at = ?", (limits.MAX_ROLLBACK_RAISED_AT + 5,))
    assert not guard.behind()
    assert guard.raised_at() == limits.MAX_ROLLBACK_RAISED_AT
    capped = guard_path.read_bytes()
    assert not guard.behind()
    assert guard_path.read_bytes() == capped  # the cap reached: not raised again
    assert read_guard(guard_path) == {"identity": 1}
    db.close()
