"""Review 66r (migration 19 of review 66i: the rollback guard's raise time in the count's row).

migration 1. A count meeting a node.db without `rollback_counters.raised_at` (a copy from
   before schema 19 put in place under a running process, whose migrations ran on the file it
   replaced) was to add the column in its own transaction, matched on SQLite's message "no such
   column: raised_at". A scope's first *undated* count (a policy bundle stored, a member
   removed, a lease revoked: `bump()` with no time, on a node.db with no row of the scope)
   ran `INSERT INTO rollback_counters (scope, counter, raised_at) ...`, whose message on such a
   node.db is "table rollback_counters has no column named raised_at": not matched, so the
   write failed with a StorageError, and every later one the same, until the process was
   restarted. The undated first count no longer names the column (it is NULL by default).

migration 2. That fallback ran its statements (the column added, the old table's times moved,
   the table dropped) on the connection itself, outside `SqliteDatabase`'s error mapping: a
   failure among them (a full disk, a damaged page; here a trigger of node.db's) came out of a
   rotation as a raw `sqlite3.OperationalError`, not the StorageError naming node.db that every
   other statement of the count raises (and its callers handle). Now typed.

migration 3. The fallback moved the times into the column and dropped the old table but left
   node.db's `user_version` at 18: in the layout of schema 19, it was opened by a troth from
   before schema 19 (which refuses a node.db at 19), whose crash recovery reads the raise time
   from the old table only: the times moved were silently gone for it (a rotation killed after
   its commit raised the guard undated, review 60n's crash 1 again). A node.db at 18 is now
   marked 19 in the fallback's transaction, as the migration would.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from troth.errors import ConfigError, StorageError
from troth.storage import SqliteDatabase
from troth.storage.raised_times import SCHEMA, keep_raise_times_in_counts
from troth.storage.rollback import RollbackGuard
from troth.storage.sqlite import _MIGRATIONS


def test_an_undated_first_count_on_a_node_db_without_the_column(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "node.db")
    # a copy from before schema 19 written in place under this process (its migrations ran)
    db.execute("ALTER TABLE rollback_counters DROP COLUMN raised_at")
    guard = RollbackGuard(db, "policy")
    with db.transaction():
        guard.bump()
    assert guard.counter() == 1
    assert not guard.behind()
    with db.transaction():  # a dated count after it adds the column
        RollbackGuard(db, "identity").bump(1_790_000_000)
    rows = db.fetch_all("SELECT scope, counter, raised_at FROM rollback_counters ORDER BY 1")
    assert [tuple(r) for r in rows] == [("identity", 1, 1_790_000_000), ("policy", 1, None)]
    db.close()


def test_a_failure_of_the_fallback_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    db = SqliteDatabase(path)
    guard = RollbackGuard(db, "identity")
    with db.transaction():
        guard.bump(100)
    conn = sqlite3.connect(path)
    with conn:  # the count's statement and the fallback's move both fail to prepare
        conn.execute("CREATE TABLE decoy (x INTEGER)")
        conn.execute(
            "CREATE TABLE rollback_raised (scope TEXT PRIMARY KEY, raised_at INTEGER NOT NULL) "
            "WITHOUT ROWID"
        )
        conn.execute("INSERT INTO rollback_raised VALUES ('identity', 999)")
        conn.execute(
            "CREATE TRIGGER t AFTER UPDATE ON rollback_counters "
            "BEGIN UPDATE decoy SET x = raised_at; END"
        )
    conn.close()
    with (
        pytest.raises(StorageError, match=r"node\.db: no such column: raised_at"),
        db.transaction(),
    ):
        guard.bump(300)
    assert guard.counter() == 1  # nothing of it written
    assert db.fetch_one("SELECT raised_at FROM rollback_raised")[0] == 999
    db.close()


def test_the_fallback_marks_node_db_at_19(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    db = SqliteDatabase(path)
    guard = RollbackGuard(db, "identity")
    conn = sqlite3.connect(path)
    with conn:  # a copy from before schema 19 written in place under this process
        conn.execute("ALTER TABLE rollback_counters DROP COLUMN raised_at")
        conn.execute(f"PRAGMA user_version = {SCHEMA - 1}")
    conn.close()
    with db.transaction():
        guard.bump(1_790_000_000)  # the fallback: the column added
    assert db.fetch_one("PRAGMA user_version")[0] == SCHEMA
    db.close()
    with pytest.raises(ConfigError, match="has schema 19; this troth knows 18"):
        SqliteDatabase(path, migrations=_MIGRATIONS[: SCHEMA - 1])  # the troth before it refuses


def test_schema_19_is_the_migration_of_the_raise_times() -> None:
    assert _MIGRATIONS[SCHEMA - 1] is keep_raise_times_in_counts
