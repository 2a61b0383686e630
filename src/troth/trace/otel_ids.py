"""The span ids one OpenTelemetry export emitted (`troth.trace.otel.export_otel`; review 55e,
otel 1): a set kept in a private temporary SQLite database, so that its memory does not grow
with the log (an in-memory set took about 120 bytes a span: 1.2 GB for ten million records).

SQLite keeps the database in a file of its own (`connect("")`: deleted when it is closed) and
at most `_CACHE_KIB` of its pages in memory; nothing is synced (the set lives as long as one
export).
"""

from __future__ import annotations

import sqlite3
from typing import Final, Protocol

__all__ = ["SpanIds", "TakenIds"]

_CACHE_KIB: Final = 2048
_SIGNED: Final = 1 << 63  # an OTel span id is 64 bits unsigned, an SQLite integer signed


class TakenIds(Protocol):
    """The span ids an export already emitted (`record_span`'s `taken`): a `set[int]`, or
    `SpanIds`."""

    def __contains__(self, span_id: object, /) -> bool: ...

    def add(self, span_id: int, /) -> None: ...


class SpanIds:
    """A set of span ids on disk (`TakenIds`); `close` deletes it."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("", isolation_level=None)
        self._db.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("CREATE TABLE ids (id INTEGER PRIMARY KEY) WITHOUT ROWID")
        self._db.execute("BEGIN")  # one transaction for the export: never committed

    def __contains__(self, span_id: object, /) -> bool:
        if type(span_id) is not int:
            return False
        found = self._db.execute("SELECT 1 FROM ids WHERE id = ?", (span_id - _SIGNED,))
        return found.fetchone() is not None

    def add(self, span_id: int, /) -> None:
        self._db.execute("INSERT OR IGNORE INTO ids VALUES (?)", (span_id - _SIGNED,))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SpanIds:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
