"""The span ids one OpenTelemetry export emitted (`troth.trace.otel.export_otel`; review 55e,
otel 1), each with the parent it was emitted under (review 64i, otel 4: how a span that would
close a cycle is found), or an ancestor it was pointed at once its parents were walked (review
64q, otel 1: followed 64 levels up at most, a chain was cut past them): kept in a private
temporary SQLite database, so that its memory does not grow with the log (an in-memory set took
about 120 bytes a span: 1.2 GB for ten million records); `EmittedIds` in memory, for the spans
of a list of records (`record_spans`).

The database is a `troth.trace.scratch` one, at most `_CACHE_KIB` of its pages in memory (a
full disk: StorageError).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

from troth.trace.scratch import open_scratch, scratch_errors

__all__ = ["EmittedIds", "SpanIds", "TakenIds"]

_CACHE_KIB: Final = 2048
_WHAT: Final = "the span ids the OpenTelemetry export emitted"
_SIGNED: Final = 1 << 63  # an OTel span id is 64 bits unsigned, an SQLite integer signed


class TakenIds(Protocol):
    """The span ids an export already emitted, each with its parent's (`record_span`'s
    `taken`): `EmittedIds`, or `SpanIds`."""

    def __contains__(self, span_id: object, /) -> bool: ...

    def add(self, span_id: int, parent: int | None = None, /) -> None:
        """Note `span_id` emitted; with `parent`, the parent it was emitted under (noted again
        once its parent is known)."""
        ...

    def reaches(self, span_id: int, target: int, /) -> bool:
        """Whether `span_id` or its parents, as emitted, reach `target`: followed to their top
        (a root, or a span not emitted yet), at any depth, each span walked then pointed at
        the top (`_walk`: a span's parent is set once, so an ancestor stays one)."""
        ...


def _walk(
    span_id: int,
    target: int,
    up: Callable[[int], int | None],
    point: Callable[[int, int], None],
    bound: int,
) -> bool:
    """Whether `up` (a span's parent, or an ancestor it was pointed at) followed from `span_id`
    reaches `target` before its top; then each span walked past is pointed (`point`) at where
    the walk stopped, in a second walk: nothing held per level, however deep. More than `bound`
    steps (the spans noted: only a cycle, and none is, a span being emitted under a parent only
    when the parent does not reach it) read as reaching `target`: a root, as in doubt."""
    at, steps = span_id, 0
    while at != target:
        above = up(at)
        if above is None:
            break
        steps += 1
        if steps > bound:
            return True
        at = above
    top, at = at, span_id
    while at != top:
        above = up(at)
        if above is None or above == top:
            break
        point(at, top)
        at = above
    return top == target


class EmittedIds:
    """`TakenIds` in memory, for the spans of the records given (`record_spans`)."""

    def __init__(self) -> None:
        self._parents: dict[int, int | None] = {}

    def __contains__(self, span_id: object, /) -> bool:
        return span_id in self._parents

    def add(self, span_id: int, parent: int | None = None, /) -> None:
        if parent is not None or span_id not in self._parents:
            self._parents[span_id] = parent

    def reaches(self, span_id: int, target: int, /) -> bool:
        return _walk(
            span_id, target, self._parents.get, self._parents.__setitem__, len(self._parents)
        )


class SpanIds:
    """The span ids emitted, with their parents', on disk (`TakenIds`); `close` deletes it."""

    def __init__(self) -> None:
        self._db = open_scratch(
            _WHAT,
            _CACHE_KIB,
            "CREATE TABLE ids (id INTEGER PRIMARY KEY, parent INTEGER) WITHOUT ROWID",
        )
        self._added = 0

    def __contains__(self, span_id: object, /) -> bool:
        if type(span_id) is not int:
            return False
        with scratch_errors(_WHAT):
            found = self._db.execute("SELECT 1 FROM ids WHERE id = ?", (span_id - _SIGNED,))
            return found.fetchone() is not None

    def add(self, span_id: int, parent: int | None = None, /) -> None:
        self._added += 1  # (at least the spans noted: `reaches`'s bound)
        row = (span_id - _SIGNED, None if parent is None else parent - _SIGNED)
        with scratch_errors(_WHAT):
            self._db.execute(
                "INSERT INTO ids VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET parent ="
                " coalesce(excluded.parent, parent)",
                row,
            )

    def reaches(self, span_id: int, target: int, /) -> bool:
        with scratch_errors(_WHAT):
            return _walk(span_id, target, self._parent, self._point, self._added)

    def _point(self, span_id: int, ancestor: int) -> None:
        self._db.execute(
            "UPDATE ids SET parent = ? WHERE id = ?", (ancestor - _SIGNED, span_id - _SIGNED)
        )

    def _parent(self, span_id: int) -> int | None:
        found = self._db.execute("SELECT parent FROM ids WHERE id = ?", (span_id - _SIGNED,))
        row = found.fetchone()
        return None if row is None or row[0] is None else int(row[0]) + _SIGNED

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SpanIds:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
