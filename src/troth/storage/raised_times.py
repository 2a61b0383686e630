"""A rollback scope's raise time in its count's row (review 66i, rotate 1; docs/storage.md,
"Rollback guard"): `rollback_counters.raised_at`, set by the count's own UPDATE.

Until schema 19 (node.db's `user_version` 18) a dated count (`RollbackGuard.bump(at)`: an
identity's rotation) kept its time in a table of its own, `rollback_raised` (review 60n, crash
1; made on first use, review 61f): one more statement a rotation, and one more B-tree page in
its commit whenever the time moved (a rotation a second or more after the last: every real
one). The migration here moves each
scope's time into its count's row and drops that table, in the migration's transaction; it is
idempotent (a node.db whose version was set back runs it again: the tests that undo
migrations do), and the count's statement, meeting a node.db without the column (a copy from
before put in place under a running process), runs it too, in its own transaction.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from troth.storage.row_types import whole_sql

__all__ = [
    "COUNT",
    "COUNT_DATED",
    "COUNT_READ",
    "FIRST_COUNT",
    "FIRST_COUNT_DATED",
    "MISSING",
    "SCHEMA",
    "TIME_READ",
    "keep_raise_times_in_counts",
    "moved_in_place",
]

SCHEMA: Final = 19
"""node.db's `user_version` once `keep_raise_times_in_counts` ran (the migration it is)."""

COUNT: Final = "UPDATE rollback_counters SET counter = counter + 1 WHERE scope = ?"
# never lowered: a time before the kept one (a clock stepped back) leaves the kept one; a
# kept one not an integer (node.db edited) is none, replaced (review 66z, upgrade 2: text,
# ordered after every number by SQLite, was kept by max() and raised ValueError at each read)
COUNT_DATED: Final = (
    "UPDATE rollback_counters SET counter = counter + 1, raised_at = CASE WHEN "
    "typeof(raised_at) = 'integer' AND raised_at > ?1 THEN raised_at ELSE ?1 END WHERE scope = ?2"
)
COUNT_READ: Final = (
    f"SELECT {whole_sql('counter')}, "  # noqa: S608
    "CASE WHEN typeof(raised_at) = 'integer' THEN raised_at END "
    "FROM rollback_counters WHERE scope = ?"
)
"""A scope's count (`troth.storage.row_types.whole_sql`: the name of its type unless an integer,
refused; review 71c, rows 1) and its raise time (None unless an integer: review 66z, upgrade
2)."""
TIME_READ: Final = (
    "SELECT CASE WHEN typeof(raised_at) = 'integer' THEN raised_at END "
    "FROM rollback_raised WHERE scope = ?"
)
"""A scope's raise time in the table of a troth before schema 19 (None unless an integer)."""
# an undated first count does not name the column (review 66r, migration 1: it did, and on a
# node.db without it, SQLite's "table rollback_counters has no column named raised_at" is not
# `MISSING`: a scope's first undated count, a policy bundle stored, failed until a restart)
FIRST_COUNT: Final = "INSERT INTO rollback_counters (scope, counter) VALUES (?, 1)"
FIRST_COUNT_DATED: Final = (
    "INSERT INTO rollback_counters (scope, counter, raised_at) VALUES (?2, 1, ?1)"
)
MISSING: Final = "no such column: raised_at"
"""SQLite's whole message for a node.db without the column (nothing else is taken for it)."""

_LEGACY: Final = "rollback_raised"


def keep_raise_times_in_counts(conn: sqlite3.Connection) -> None:
    """Add `rollback_counters.raised_at` unless it is there, set each scope's to the later of
    it and the time `rollback_raised` kept (integer times only), and drop that table; inside
    the caller's transaction (a crash undoes all of it). A time kept for a scope with no count
    row (never written by troth: the time and the first count are one transaction) is dropped,
    not made into a row (a row with no count would arm the scope: troth.storage.rollback)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(rollback_counters)")}
    if "raised_at" not in columns:
        conn.execute("ALTER TABLE rollback_counters ADD COLUMN raised_at INTEGER")
    legacy = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (_LEGACY,)
    ).fetchone()
    if legacy is None:
        return
    # integers only: SQLite orders text after every number, and a text time (node.db edited)
    # kept by max() reads as none, the integer one lost (review 67k, upgrade 1)
    conn.execute(
        "UPDATE rollback_counters SET raised_at = (SELECT max(coalesce(kept, old), "
        "coalesce(old, kept)) FROM (SELECT CASE WHEN typeof(rollback_counters.raised_at) = "
        "'integer' THEN rollback_counters.raised_at END AS kept, CASE WHEN typeof(r.raised_at) "
        "= 'integer' THEN r.raised_at END AS old FROM rollback_raised AS r "
        "WHERE r.scope = rollback_counters.scope)) "
        "WHERE scope IN (SELECT scope FROM rollback_raised)"
    )
    conn.execute("DROP TABLE rollback_raised")


def moved_in_place(conn: sqlite3.Connection) -> None:
    """`keep_raise_times_in_counts` for a count meeting a node.db without the column (a copy
    from before schema 19 put in place under a running process), inside the count's
    transaction; a node.db at schema 18 is marked 19, as the migration would: left at 18 in the
    layout of 19, a troth before schema 19 opened it (it refuses one at 19) and read none of
    the times moved (review 66r, migration 3)."""
    keep_raise_times_in_counts(conn)
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version == SCHEMA - 1:
        conn.execute(f"PRAGMA user_version = {SCHEMA}")
