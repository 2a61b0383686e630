"""What a proof bundle's verifier checks of a line's text beside its signatures (docs/traces.md,
"What verification detects"; review 48b): the readable record is the signed payload, and a
line that is no bundle is named by its place in the export.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from troth.errors import TraceError
from troth.trace.record import canonical_json

__all__ = ["at_line", "numbered", "readable_is_payload"]


def readable_is_payload(readable: Any, payload: bytes) -> bool:
    """Whether a bundle's readable `record` is its signed payload: the payload's canonical JSON
    (RFC 8785 for its domain, `canonical_json`: integers, no floats) is the payload's bytes.
    Python's equality took `false` for 0 and 1790000000.0 for 1790000000, so a line could
    show a record the payload does not hold (review 48b, exports 1); other spellings of the
    same JSON values (member order, `\\u` escapes) are the same record."""
    try:
        return canonical_json(readable) == payload
    except (TypeError, ValueError, RecursionError):  # (UnicodeEncodeError: a lone surrogate)
        return False


def numbered(lines: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """The lines of an export that are not blank, each with its line number (from 1)."""
    for number, line in enumerate(lines, 1):
        if line.strip():
            yield number, line


def at_line(exc: TraceError, number: int) -> TraceError:
    """A line's failure, named by the line's `number` when it names no record (the line is no
    bundle, or its index is not read): one byte of a JSONL export edited so that a line is not
    JSON was refused naming no place (review 48b, exports 2)."""
    if exc.index is not None or exc.record is not None:
        return exc
    detail = f"line {number}: {exc.detail}" if exc.detail else f"line {number}"
    return TraceError(exc.reason, detail)
