"""A node.db column read as its type says, whatever a damaged row holds: SQLite returns the
type written (a node.db from a stolen backup, edited by a process of the same uid, or damaged
on disk may hold any type in any column), and `bytes()` / `int()` of it failed bare (TypeError,
ValueError), made an INTEGER n n zero bytes (MemoryError for a large n), or truncated a REAL
(review 71c, rows 1). The SQL hands Python the value only when it is of the column's type
(and a BLOB's within its bound, its length read from the row's header), else its type's name;
the reader refuses a type name with StorageError saying node.db is damaged, never heals it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from troth.errors import StorageError

__all__ = [
    "blob_sql",
    "or_null",
    "schema_of",
    "stored_blob",
    "stored_text",
    "stored_whole",
    "text_sql",
    "whole_sql",
]


def whole_sql(column: str) -> str:
    """`column` (an INTEGER) as `stored_whole` takes it: its value, or the name of its type."""
    return f"CASE WHEN typeof({column}) = 'integer' THEN {column} ELSE typeof({column}) END"


def blob_sql(column: str, most: int) -> str:
    """`column` (a BLOB of at most `most` bytes) as `stored_blob` takes it: its bytes, or the
    name of its type (a BLOB past `most` not fetched: 'blob')."""
    return (
        f"CASE WHEN typeof({column}) = 'blob' AND length({column}) <= {int(most)} "
        f"THEN {column} ELSE typeof({column}) END"
    )


def text_sql(column: str, most: int) -> str:
    """`column` (TEXT of at most `most` bytes) as `stored_text` takes it: the bytes of its text,
    or the name of its type (TEXT past `most` bytes not fetched: 'text'). Its bytes, not its
    text: TEXT that is not UTF-8 failed the statement that read it ("Could not decode to
    UTF-8"), and `length()` of it counts characters by their lead bytes, a lead byte and a MiB
    of continuation bytes one (review 71k, wave2d 1)."""
    return (
        f"CASE WHEN typeof({column}) = 'text' AND length(CAST({column} AS BLOB)) <= {int(most)} "
        f"THEN CAST({column} AS BLOB) ELSE typeof({column}) END"
    )


def or_null(column: str, read: str) -> str:
    """`read` (one of the above, of `column`) for a column that may be NULL: NULL as it is."""
    return f"CASE WHEN {column} IS NULL THEN NULL ELSE {read} END"


def stored_whole(value: object, what: str, path: Path) -> int:
    """A value read by `whole_sql`; StorageError (node.db at `path` damaged) naming `what`."""
    if type(value) is int:
        return value
    raise StorageError(f"{path} is damaged: its {what} is not a whole number ({value})")


def stored_blob(value: object, what: str, path: Path, most: int) -> bytes:
    """A value read by `blob_sql`; StorageError (node.db at `path` damaged) naming `what`."""
    if type(value) is bytes:
        return value
    kind = f"a blob past {most} bytes" if value == "blob" else str(value)
    raise StorageError(f"{path} is damaged: its {what} is not bytes ({kind})")


def stored_text(value: object, what: str, path: Path, most: int) -> str:
    """A value read by `text_sql`; StorageError (node.db at `path` damaged) naming `what`."""
    if type(value) is bytes:
        try:
            return value.decode()
        except UnicodeDecodeError:
            kind = "bytes that are not UTF-8"
    else:
        kind = f"text past {most} bytes" if value == "text" else str(value)
    raise StorageError(f"{path} is damaged: its {what} is not text ({kind})")


def schema_of(conn: sqlite3.Connection, path: Path) -> int:
    """The schema of the database at `path` (`PRAGMA user_version`: how many migrations ran);
    StorageError for a negative one, which no troth writes (a damaged header, an edit): it was
    "migrated" from there, Python's negative index running the last migration first (review
    71c, rows 2)."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version < 0:
        raise StorageError(f"{path} is damaged: it has schema {version}, which no troth writes")
    return version
