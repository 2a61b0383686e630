"""The private temporary SQLite databases a trace export keeps what would grow with the log
in (its Merkle tree: `troth.trace.export_tree`; its span ids: `troth.trace.otel_ids`; review
55e, exports 2 and otel 1).

SQLite keeps such a database in a file of its own (`connect("")`: in SQLITE_TMPDIR, else
TMPDIR, else /var/tmp or /tmp; deleted when it is closed) and at most `cache_kib` of its pages
in memory; nothing is synced (it lives as long as one export). A failure of that file (the
disk full) is StorageError, as every other storage failure (review 55l, exports 1: it was a
bare sqlite3.OperationalError, a traceback from the CLI).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from troth.errors import StorageError

__all__ = ["open_scratch", "scratch_errors"]


@contextmanager
def scratch_errors(what: str) -> Iterator[None]:
    """StorageError for an SQLite failure inside the block, naming `what` the database holds."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StorageError(
            f"{what} (a temporary database, in SQLITE_TMPDIR or TMPDIR when set): {exc}"
        ) from exc


def open_scratch(what: str, cache_kib: int, table: str) -> sqlite3.Connection:
    """A fresh private temporary database holding `table` (its CREATE TABLE statement), inside
    one transaction never committed."""
    with scratch_errors(what):
        db = sqlite3.connect("", isolation_level=None)
        try:
            db.execute(f"PRAGMA cache_size = -{cache_kib}")
            db.execute("PRAGMA journal_mode = OFF")
            db.execute("PRAGMA synchronous = OFF")
            db.execute(table)
            db.execute("BEGIN")
        except BaseException:
            db.close()
            raise
    return db
