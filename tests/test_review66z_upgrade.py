"""Review 66z (the rollback guard's raise time in the count's row, schema 19: the upgrade
window, reviews 66i and 66r).

upgrade 1. A troth from before schema 19 opened node.db at 18 and kept running while a new one
   migrated it to 19 (an old process's connection never reads `user_version` again). A new
   rotation killed after its commit, before the guard's raise (crash window 2), left the
   time in the count's row; the OLD process's next check found the store ahead of its guard and
   raised it with the time it reads, from `rollback_raised` only (the migration dropped it):
   the count was raised, its time not. Every later check found the counts equal and read no
   time, so the guard kept the previous rotation's for good, and a copy taken between the two,
   restored, was dated by the older rotation (`last_rotation`): review 60n's crash 1 again, by
   way of the upgrade. Now a check finding the counts equal raises the guard's time to node.db's
   when that is later (read by the statement that reads the count: no statement added; a
   time is never lowered, so node.db's can only make a release stricter, never hide a restore).

upgrade 2. A non-integer planted in `rollback_counters.raised_at` (or the old table's; node.db
   edited by hand) was kept by the dated count's `max()` (SQLite orders text after every
   number) and read with `int()`: a ValueError, not a StorageError, out of every check that
   found the store ahead of its guard (and, with upgrade 1's read, of every check). A time that
   is not an integer is now no time: read as none, and replaced by the next dated count's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.backups import copy_db, restore_db
from tests.support.killed import killed_after
from troth.faults import CRASH_EXIT_CODE
from troth.identity.restored import RestoredIdentities, last_rotation
from troth.storage import SqliteDatabase
from troth.storage.rollback import RollbackGuard, read_guard

T = 1_796_000_000
DAY = 86_400


def _count_rotation(path: Path, at: int) -> Callable[[], None]:
    def count() -> None:
        db = SqliteDatabase(path)
        with db.transaction():
            RestoredIdentities(db).count_rotation(at)
        db.close()

    return count


def _old_process_check(path: Path) -> None:
    """What a troth from before schema 19, still running, does at its check: it reads the raise
    time from `rollback_raised` only (gone after the migration), so it raises the guard to
    node.db's count undated. Emulated by hiding the column from this troth's reader for one
    check (node.db itself is left as it was: the old check writes nothing to it)."""
    conn = sqlite3.connect(path)
    with conn:
        (kept,) = conn.execute(
            "SELECT raised_at FROM rollback_counters WHERE scope = 'identity'"
        ).fetchone()
        conn.execute("ALTER TABLE rollback_counters DROP COLUMN raised_at")
    db = SqliteDatabase(path)
    assert not RollbackGuard(db, "identity").behind()  # ahead: raised, undated
    db.close()
    with conn:
        conn.execute("ALTER TABLE rollback_counters ADD COLUMN raised_at INTEGER")
        conn.execute("UPDATE rollback_counters SET raised_at = ? WHERE scope = 'identity'", (kept,))
    conn.close()


def test_a_rotation_recovered_by_an_old_process_keeps_its_date(tmp_path: Path) -> None:
    """Upgrade 1: the new troth's rotation killed in crash window 2, the guard raised by an old
    troth's check (count only); the new troth's next check dates the guard by node.db's time,
    and a copy from between the two rotations is dated by the later one."""
    path = tmp_path / "node.db"
    SqliteDatabase(path).close()
    assert killed_after(0, _count_rotation(path, T)) == 0
    copy_db(path, tmp_path / "copy.db")  # taken after the first rotation, before the second
    second = _count_rotation(path, T + DAY)
    assert killed_after(0, second, "storage.rollback-guard.before-write") == CRASH_EXIT_CODE
    _old_process_check(path)
    assert read_guard(path.parent / "node.db.guard") == {"identity": 2}
    db = SqliteDatabase(path)
    guard = RollbackGuard(db, "identity")
    assert guard.raised_at() == T  # the old check raised the count only
    assert not guard.behind()
    assert guard.raised_at() == T + DAY
    db.close()
    restore_db(path, tmp_path / "copy.db")
    db = SqliteDatabase(path)
    assert RestoredIdentities(db).check(T + 2 * DAY) is not None
    assert last_rotation(db) == T + DAY
    db.close()


@pytest.mark.parametrize("table", ["rollback_counters", "rollback_raised"])
def test_a_planted_text_time_is_no_time(tmp_path: Path, table: str) -> None:
    """Upgrade 2: a text planted as the time, then a dated count killed before its guard raise
    (crash window 2): the next check raises the guard (no ValueError), and the next dated count
    replaces the text with its time."""
    path = tmp_path / "node.db"
    SqliteDatabase(path).close()
    assert killed_after(0, _count_rotation(path, T)) == 0
    conn = sqlite3.connect(path)
    with conn:
        if table == "rollback_raised":
            conn.execute(
                "CREATE TABLE rollback_raised (scope TEXT PRIMARY KEY, raised_at INTEGER NOT "
                "NULL) WITHOUT ROWID"
            )
            conn.execute("INSERT INTO rollback_raised VALUES ('identity', 'later')")
        else:
            conn.execute("UPDATE rollback_counters SET raised_at = 'later'")
    conn.close()
    second = _count_rotation(path, T + DAY)
    assert killed_after(0, second, "storage.rollback-guard.before-write") == CRASH_EXIT_CODE
    db = SqliteDatabase(path)
    guard = RollbackGuard(db, "identity")
    assert not guard.behind()
    assert read_guard(guard.path) == {"identity": 2}
    assert guard.raised_at() == T + DAY
    with db.transaction():
        guard.bump(T + 2 * DAY)
    assert guard.raised_at() == T + 2 * DAY
    assert db.fetch_all("SELECT raised_at FROM rollback_counters") == [(T + 2 * DAY,)]
    db.close()
