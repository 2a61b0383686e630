"""The one rule a trace log and its offline verifier share on a record dated before a
checkpoint that precedes it in the log (review 63s, traces 3; docs/formats.md, "When a record
entered the log").

A log appends a record only within MAX_CLOCK_SKEW_SECONDS of its clock, and its clock read at
least a checkpoint's time when it signed it (`TraceLog.checkpoint` never dates one before an
older one, nor earlier than the skew before its newest record). So a record after a checkpoint
dated more than the skew before the checkpoint's time was never appended by an honest log: it
was written into the log's file (a thief of an agent's retired key, dating a record before
the rotation). The log refuses such a record at append (its clock was stepped back: the fix is
the clock, the record is refused however long that takes) and `verify_log` refuses one after
the checkpoint a verifier kept: `BACKDATED`, naming the record. A record exactly the skew
before the checkpoint is taken on both sides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from troth import limits
from troth.errors import TraceError, TraceFailure
from troth.trace.record import TraceRecord

__all__ = ["KeptFloor", "check_not_backdated"]


def check_not_backdated(
    time: int, checkpoint_time: int | None, *, record: str | None = None
) -> None:
    """Raise TraceError(BACKDATED) when a record dated `time` follows, in its log, a checkpoint
    dated `checkpoint_time` (None: none precedes it) by more than MAX_CLOCK_SKEW_SECONDS; `record`:
    its id, for the error."""
    if checkpoint_time is None:
        return
    if time < checkpoint_time - limits.MAX_CLOCK_SKEW_SECONDS:
        raise TraceError(
            TraceFailure.BACKDATED,
            f"record at {time}, after a checkpoint the log signed at {checkpoint_time} "
            f"(more than {limits.MAX_CLOCK_SKEW_SECONDS} s before it: a clock stepped back, "
            "or a record written into the log's file)",
            record=record,
        )


@dataclass(frozen=True)
class KeptFloor:
    """The checkpoint a verifier kept (`note`, of `size` records, dated `time`) as the floor
    of the times of the records after it (`LogVerifier.keep`)."""

    note: bytes
    size: int
    time: int

    def check(self, index: int, record: TraceRecord, verify_kept: Callable[[bytes], Any]) -> None:
        """Raise TraceError(BACKDATED) at `index` when `record`, at or past the kept size, is
        dated more than the skew before the kept note, once `verify_kept` verified the note
        (unverified, its time is not taken on trust: its own fault is raised instead)."""
        if index < self.size:
            return
        try:
            check_not_backdated(record.time, self.time, record=record.id)
        except TraceError as exc:
            verify_kept(self.note)
            raise exc.located(index=index, record=record.id) from None
