"""Review 66r: attacks on migration 19 (review 66i, rotate 1: the rollback guard's raise time in
`rollback_counters.raised_at`) that did not work, each kept as a test of the defence it met.

- the migration killed at each of its statements: node.db is at 18 (the old table, no column)
  or at 19 (the time moved), never half, and the next open migrates it;
- the troth before schema 19 opening a node.db at 19 refuses it (ConfigError), unchanged;
- the migration run again (the version set back, an old troth's table made again) keeps the
  later of the two times, and a second run changes nothing;
- a trigger raising SQLite's exact "no such column: raised_at" on the count: the count fails
  (no fallback taken for a pass), nothing written;
- a copy from before the migration, taken before a rotation, put back under a node that
  migrated: found at open, dated by the guard's rotation time;
- a copy whose `raised_at` was edited (far ahead; text) put back: found, and the guard's raise
  time is not taken from it;
- the column added by one connection's fallback while another connection (another process)
  counts, its count's statement prepared before the column was dropped under it: both counts
  and the later time kept;
- that fallback killed at each statement of its count: node.db is the copy (18, the old table)
  or the count done (19, the column holding the later time), never half.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.support.killed import KILLS, killed_after
from troth.errors import ConfigError, StorageError
from troth.faults import CRASH_EXIT_CODE
from troth.identity.restored import RestoredIdentities, last_rotation
from troth.storage import SqliteDatabase
from troth.storage.raised_times import SCHEMA
from troth.storage.rollback import RollbackGuard
from troth.storage.sqlite import _MIGRATIONS

T1, T2, LEGACY = 1_790_000_000, 1_790_000_500, 1_790_000_900
_OLD_TABLE = (
    "CREATE TABLE rollback_raised (scope TEXT PRIMARY KEY, raised_at INTEGER NOT NULL) "
    "WITHOUT ROWID"
)


def _rotated(path: Path, *times: int) -> None:
    """node.db at `path` with one dated `identity` count per time."""
    db = SqliteDatabase(path)
    for at in times:
        with db.transaction():
            RestoredIdentities(db).count_rotation(at)
    db.close()


def _as_schema_18(path: Path, legacy: int) -> None:
    """node.db in the layout before schema 19: no column, the time in `rollback_raised`."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")  # one transaction (a copy written whole)
    conn.execute("ALTER TABLE rollback_counters DROP COLUMN raised_at")
    conn.execute(_OLD_TABLE)
    conn.execute("INSERT INTO rollback_raised VALUES ('identity', ?)", (legacy,))
    conn.execute(f"PRAGMA user_version = {SCHEMA - 1}")
    conn.execute("COMMIT")
    conn.close()


def _layout(path: Path) -> tuple[object, ...]:
    conn = sqlite3.connect(path)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    columns = [r[1] for r in conn.execute("PRAGMA table_info(rollback_counters)")]
    old = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'rollback_raised'").fetchone()
    legacy = conn.execute("SELECT raised_at FROM rollback_raised").fetchall() if old else None
    counts = conn.execute("SELECT scope, counter FROM rollback_counters").fetchall()
    time = (
        conn.execute("SELECT raised_at FROM rollback_counters").fetchall()
        if "raised_at" in columns
        else None
    )
    conn.close()
    return version, "raised_at" in columns, legacy, counts, time


def test_the_migration_killed_at_each_statement_is_18_or_19(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    _rotated(path, T1, T2)
    _as_schema_18(path, LEGACY)
    saved = tmp_path / "saved.db"
    shutil.copyfile(path, saved)
    old = _layout(path)
    assert killed_after(0, lambda: SqliteDatabase(path).close()) == 0
    new, total = _layout(path), KILLS[-1]
    assert old[:3] == (SCHEMA - 1, False, [(LEGACY,)])
    assert new == (len(_MIGRATIONS), True, None, old[3], [(LEGACY,)])
    seen = set()
    for point in range(1, total + 1):
        shutil.copyfile(saved, path)
        for leftover in (tmp_path / "node.db-wal", tmp_path / "node.db-shm"):
            leftover.unlink(missing_ok=True)
        assert killed_after(point, lambda: SqliteDatabase(path).close()) == CRASH_EXIT_CODE
        state = _layout(path)
        assert state in (old, new), point
        seen.add(state == new)
        _rotated(path)  # opened again: migrated
        assert _layout(path) == new, point
    assert False in seen  # killed before its commit: all of it undone


def test_the_previous_troth_refuses_a_node_db_at_19(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    _rotated(path, T1)
    before = _layout(path)
    newest = f"has schema {len(_MIGRATIONS)}; this troth knows {SCHEMA - 1}"  # 19 or later
    with pytest.raises(ConfigError, match=newest):
        SqliteDatabase(path, migrations=_MIGRATIONS[: SCHEMA - 1])
    assert _layout(path) == before


def test_the_migration_run_again_keeps_the_later_time(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    _rotated(path, T1, T2)
    conn = sqlite3.connect(path)
    with conn:  # an old troth's table made again, with an earlier time; the version set back
        conn.execute(_OLD_TABLE)
        conn.execute("INSERT INTO rollback_raised VALUES ('identity', ?)", (T1,))
        conn.execute(f"PRAGMA user_version = {SCHEMA - 1}")
    conn.close()
    _rotated(path)
    once = _layout(path)
    assert once[1:] == (True, None, [("identity", 2)], [(T2,)])
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA - 1}")
    conn.close()
    _rotated(path)
    assert _layout(path) == once


def test_a_trigger_raising_the_exact_message_does_not_pass_the_count(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    _rotated(path, T1)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "CREATE TRIGGER planted BEFORE UPDATE ON rollback_counters "
            "BEGIN SELECT RAISE(ABORT, 'no such column: raised_at'); END"
        )
    conn.close()
    db = SqliteDatabase(path)
    guard = RollbackGuard(db, "identity")
    with pytest.raises(StorageError), db.transaction():
        guard.bump(T2)
    assert guard.counter() == 1
    assert db.fetch_one("SELECT raised_at FROM rollback_counters")[0] == T1
    db.close()


def test_a_copy_from_before_the_migration_is_found(tmp_path: Path) -> None:
    path, copy = tmp_path / "node.db", tmp_path / "copy.db"
    _rotated(path, T1)
    db = SqliteDatabase(path)
    db.close()
    shutil.copyfile(path, copy)
    _as_schema_18(copy, T1)  # the copy as the troth before schema 19 left it
    _rotated(path, T2)  # the node rotates after the copy (migrated)
    shutil.copyfile(copy, path)
    db = SqliteDatabase(path)  # migrates the copy
    assert RestoredIdentities(db).check(T2 + 10) is not None
    assert last_rotation(db) == T2
    assert RestoredIdentities(db).check(T2 + 20) is None  # found once
    db.close()


@pytest.mark.parametrize("edited", [4_000_000_000, "later", None])
def test_a_copy_with_its_time_edited_is_found(tmp_path: Path, edited: object) -> None:
    path, copy = tmp_path / "node.db", tmp_path / "copy.db"
    _rotated(path, T1)
    shutil.copyfile(path, copy)
    conn = sqlite3.connect(copy)
    with conn:
        conn.execute("UPDATE rollback_counters SET raised_at = ?", (edited,))
    conn.close()
    _rotated(path, T2)
    shutil.copyfile(copy, path)
    db = SqliteDatabase(path)
    guard = RollbackGuard(db, "identity")
    assert RestoredIdentities(db).check(T2 + 10) is not None
    assert guard.raised_at() == T2  # the guard's, not the copy's
    assert last_rotation(db) == T2
    db.close()


def test_the_fallback_while_another_connection_counts(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    first, second = SqliteDatabase(path), SqliteDatabase(path)
    ones, twos = RollbackGuard(first, "identity"), RollbackGuard(second, "identity")
    with second.transaction():
        twos.bump(T1)  # its dated count prepared and kept
    conn = sqlite3.connect(path)
    with conn:  # a copy from before schema 19 written in place under both
        conn.execute("ALTER TABLE rollback_counters DROP COLUMN raised_at")
        conn.execute(_OLD_TABLE)
        conn.execute("INSERT INTO rollback_raised VALUES ('identity', ?)", (LEGACY,))
    conn.close()
    with first.transaction():
        ones.bump(T2)  # adds the column, moves the old time
    with second.transaction():
        twos.bump(T2 + 1)  # its kept statement prepared again
    assert _layout(path)[1:] == (True, None, [("identity", 3)], [(LEGACY,)])
    assert not ones.behind()
    assert not twos.behind()
    # node.db's time (the later of the copy's and the counts', never lowered): the guard takes
    # it at equal counts (review 66z, upgrade 1), as it does for a store ahead of it
    assert ones.raised_at() == LEGACY
    first.close()
    second.close()


def test_the_fallback_killed_at_each_statement_is_all_or_nothing(tmp_path: Path) -> None:
    """A copy from before schema 19 written in place under a running process, whose dated
    count adds the column: killed at each statement, node.db is the copy (18, the old table) or
    the count done (19, the column holding the later time), never half."""
    path = tmp_path / "node.db"
    _rotated(path, T1)
    saved = tmp_path / "saved.db"
    shutil.copyfile(path, saved)

    def count() -> None:
        db = SqliteDatabase(path)
        _as_schema_18(path, LEGACY)  # in place, after this process migrated
        with db.transaction():
            RollbackGuard(db, "identity").bump(T2)
        db.close()

    def fresh() -> None:
        shutil.copyfile(saved, path)
        for leftover in (tmp_path / "node.db-wal", tmp_path / "node.db-shm"):
            leftover.unlink(missing_ok=True)

    fresh()
    assert killed_after(0, count) == 0
    done, total = _layout(path), KILLS[-1]
    assert done == (SCHEMA, True, None, [("identity", 2)], [(LEGACY,)])  # the fallback's 19
    fresh()
    first = _layout(path)
    _as_schema_18(path, LEGACY)
    copy = _layout(path)
    for point in range(1, total + 1):
        fresh()
        assert killed_after(point, count) == CRASH_EXIT_CODE
        assert _layout(path) in (first, copy, done), point
