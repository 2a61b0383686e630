"""Which fault `troth trace verify` names: the first bad record, the one of the lowest log index
of every fault of any kind, and why (docs/traces.md, "What verification detects";
issue #13, review 48i).
A verifier that checks some things only once every record is read (`LogVerifier`: a link to a
later record; `verify_export`: what lies between an export's lines) goes on after a refused
record to learn whether a record before it is bad.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from troth.errors import TraceError
from troth.trace.stored import StoredEntry

__all__ = ["Faults", "read_on"]


def read_on(
    entries: Iterable[StoredEntry], resume: Callable[[int], Iterable[StoredEntry]] | None
) -> Iterator[tuple[int, bytes]]:
    """(index, envelope) of a log's `entries`, going on past a row they cannot read (TraceError
    at its index) with `resume(index)`, the log's entries from `index` on; without `resume`,
    that TraceError."""
    stream = iter(entries)
    while True:
        try:
            entry = next(stream, None)
        except TraceError as exc:
            if exc.index is None or resume is None:
                raise
            stream = iter(resume(exc.index + 1))
            continue
        if entry is None:
            return
        yield entry.index, entry.envelope


_LAST = float("inf")


class Faults:
    """The faults one verification found, of which it reports the first: by log index; one at
    no record (a line of an export that is no bundle) just after the records read before it
    (`place`); one of the whole (a truncated export) after every record's. Of two at
    one place, the one noted first."""

    def __init__(self) -> None:
        self._first: tuple[float, int, TraceError] | None = None

    def note(self, fault: TraceError, place: float | None = None) -> None:
        """Note `fault`: at its index, else at `place` (the highest index read before it: -1
        for none), else (a fault of the whole) after every record's."""
        if fault.index is not None:
            rank = (float(fault.index), 0)
        else:
            rank = (_LAST if place is None else place, 1)
        if self._first is None or rank < self._first[:2]:
            self._first = (*rank, fault)

    @property
    def first(self) -> TraceError | None:
        return None if self._first is None else self._first[2]

    def raise_first(self) -> None:
        """Raise the first fault noted, if any."""
        if self._first is not None:
            raise self._first[2]
