"""node.db's store id, which its rollback guard names (review 64j, rollback 1; docs/storage.md,
"Rollback guard": another node's node.db), and the scopes still to be found restored once a
node.db was found not to be the one its guard names (troth.storage.rollback).

The id is 16 random bytes (`ROLLBACK_STORE_ID_BYTES`) made in the transaction of node.db's
first guarded write (`rollback_store`, one row); the guard is bound to it after that commit
(its version 4). A node.db whose id is not its guard's (another node's, or a copy from before
the id was made) is a restore of every scope: the first owner to check finds it, marks each
other scope node.db or the guard holds an entry of (`rollback_foreign`), and takes the guard's
id in the same transaction; each marked scope is then found by its own owner, once.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Final

from troth import limits
from troth.storage.row_types import blob_sql, stored_blob, stored_whole, whole_sql
from troth.storage.sqlite import SqliteDatabase

__all__ = [
    "adopt_store_id",
    "foreign_found",
    "foreign_found_at",
    "foreign_pending",
    "made_store_id",
    "mark_foreign",
    "read_store_id",
]

_TABLES: Final = (
    "CREATE TABLE IF NOT EXISTS rollback_store "
    "(one INTEGER PRIMARY KEY CHECK (one = 1), id BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rollback_foreign "
    "(scope TEXT PRIMARY KEY, marked_at INTEGER NOT NULL, found_at INTEGER) WITHOUT ROWID",
)


_ID_BYTES: Final = limits.ROLLBACK_STORE_ID_BYTES
_ID: Final = f"SELECT {blob_sql('id', _ID_BYTES)} FROM rollback_store WHERE one = 1"  # noqa: S608
"""The id, typed and bounded (review 71c, rows 1: `bytes()` of an INTEGER n made n bytes)."""
_FOUND_AT: Final = (
    f"SELECT scope, {whole_sql('found_at')} FROM rollback_foreign "  # noqa: S608
    "WHERE found_at IS NOT NULL"
)


def _has(db: SqliteDatabase, table: str) -> bool:
    """Whether node.db has `table` (a node.db from before review 64j, or a copy of one, not)."""
    return db.fetch_one("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)) is not None


def _made(db: SqliteDatabase) -> None:
    """Both tables, made when missing (inside the caller's transaction)."""
    for table in _TABLES:
        db.execute(table)


def read_store_id(db: SqliteDatabase) -> bytes | None:
    """node.db's store id, None before its first guarded write since review 64j."""
    if not _has(db, "rollback_store"):
        return None
    row = db.fetch_one(_ID)
    return None if row is None else stored_blob(row[0], "store id", db.path, _ID_BYTES)


def made_store_id(db: SqliteDatabase, bound: bytes | None) -> bytes:
    """node.db's store id, inside the caller's transaction; when it has none, the one its
    guard names (`bound`: a node.db from before its first guarded write, or before review 64j,
    judged by its counts alone), else made (random)."""
    found = read_store_id(db)
    if found is not None:
        return found
    _made(db)
    made = secrets.token_bytes(limits.ROLLBACK_STORE_ID_BYTES) if bound is None else bound
    db.execute("INSERT INTO rollback_store (one, id) VALUES (1, ?)", (made,))
    return made


def adopt_store_id(db: SqliteDatabase, store: bytes) -> None:
    """`store` (the guard's) as node.db's id, inside the transaction that found the mismatch."""
    _made(db)
    db.execute(
        "INSERT INTO rollback_store (one, id) VALUES (1, ?) "
        "ON CONFLICT (one) DO UPDATE SET id = excluded.id",
        (store,),
    )


def mark_foreign(db: SqliteDatabase, scopes: Iterable[str], now: int) -> None:
    """`scopes` still to be found restored by their owners (`foreign_pending`), in the
    transaction of `adopt_store_id`."""
    _made(db)
    for scope in scopes:
        db.execute(
            "INSERT INTO rollback_foreign (scope, marked_at, found_at) VALUES (?, ?, NULL) "
            "ON CONFLICT (scope) DO UPDATE SET marked_at = excluded.marked_at, found_at = NULL",
            (scope, now),
        )


def foreign_pending(db: SqliteDatabase, scope: str) -> bool:
    """Whether `scope` was marked (`mark_foreign`) and its owner has not found it since."""
    if not _has(db, "rollback_foreign"):
        return False
    row = db.fetch_one(
        "SELECT 1 FROM rollback_foreign WHERE scope = ? AND found_at IS NULL", (scope,)
    )
    return row is not None


def foreign_found(db: SqliteDatabase, scope: str, now: int) -> None:
    """`scope` found (in its owner's restore transaction): the time kept, so `troth node
    status` says the restore was another node's node.db."""
    mark_foreign(db, (scope,), now)
    db.execute("UPDATE rollback_foreign SET found_at = ? WHERE scope = ?", (now, scope))


def foreign_found_at(db: SqliteDatabase) -> dict[str, int]:
    """When each scope found another node's node.db last (`foreign_found`)."""
    if not _has(db, "rollback_foreign"):
        return {}
    rows = db.fetch_all(_FOUND_AT)
    return {str(r[0]): stored_whole(r[1], "foreign found time", db.path) for r in rows}
