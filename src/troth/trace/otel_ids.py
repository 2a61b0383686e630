"""The span ids one OpenTelemetry export emitted (`troth.trace.otel.export_otel`; review 55e,
otel 1): a set kept in a private temporary SQLite database, so that its memory does not grow
with the log (an in-memory set took about 120 bytes a span: 1.2 GB for ten million records).

The database is a `troth.trace.scratch` one, at most `_CACHE_KIB` of its pages in memory (a
full disk: StorageError).
"""

from __future__ import annotations

from typing import Final, Protocol

from troth.trace.scratch import open_scratch, scratch_errors

__all__ = ["SpanIds", "TakenIds"]

_CACHE_KIB: Final = 2048
_WHAT: Final = "the span ids the OpenTelemetry export emitted"
_SIGNED: Final = 1 << 63  # an OTel span id is 64 bits unsigned, an SQLite integer signed


class TakenIds(Protocol):
    """The span ids an export already emitted (`record_span`'s `taken`): a `set[int]`, or
    `SpanIds`."""

    def __contains__(self, span_id: object, /) -> bool: ...

    def add(self, span_id: int, /) -> None: ...


class SpanIds:
    """A set of span ids on disk (`TakenIds`); `close` deletes it."""

    def __init__(self) -> None:
        self._db = open_scratch(
            _WHAT, _CACHE_KIB, "CREATE TABLE ids (id INTEGER PRIMARY KEY) WITHOUT ROWID"
        )

    def __contains__(self, span_id: object, /) -> bool:
        if type(span_id) is not int:
            return False
        with scratch_errors(_WHAT):
            found = self._db.execute("SELECT 1 FROM ids WHERE id = ?", (span_id - _SIGNED,))
            return found.fetchone() is not None

    def add(self, span_id: int, /) -> None:
        with scratch_errors(_WHAT):
            self._db.execute("INSERT OR IGNORE INTO ids VALUES (?)", (span_id - _SIGNED,))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SpanIds:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
