"""The one rule a trace log and its offline verifiers share on a record dated before a
checkpoint that precedes it in the log (review 63s, traces 3; review 66h; docs/formats.md, "A
checkpoint is a floor for the records after it").

A log appends a record only within MAX_CLOCK_SKEW_SECONDS of its clock, and its clock read at
least a checkpoint's time when it signed it (`TraceLog.checkpoint` never dates one before an
older one, nor earlier than the skew before its newest record). So a record after a checkpoint
dated more than the skew before the checkpoint's time was never appended by an honest log: it
was written into the log's file (a thief of an agent's retired key, dating a record before
the rotation). The log refuses such a record at append (its clock was stepped back: the fix is
the clock, the record is refused until then), `verify_log` refuses one after the checkpoint a
verifier kept, and so do `verify_export` and `verify_bundle` for a line whose log material
signs the kept note: `BACKDATED`, naming the record. A record exactly the skew before the
checkpoint is taken on both sides. `verify_log` holds every record to the log's own signed
checkpoints as well (`LogFloor`; review 67h, traces 1: a thief who put the checkpoint rows back
after writing the record in read `unanchored`, no fault, without a kept note).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from troth import limits
from troth.errors import TraceError, TraceFailure
from troth.trace.checkpoint import Checkpoint
from troth.trace.record import TraceRecord

__all__ = ["LogFloor", "check_after_kept", "check_not_backdated"]


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


def check_after_kept(
    index: int, record: TraceRecord, kept: Checkpoint, is_the_logs: Callable[[], bool]
) -> None:
    """Raise TraceError(BACKDATED) at `index` when `record`, at or past the size of the
    checkpoint a verifier kept, is dated more than the skew before it, and `is_the_logs()` (the
    kept note verified as signed by the record's log; it may raise the note's own fault
    instead) says the kept note is a floor for it: an unverified note's time is not taken."""
    if index < kept.size:
        return
    try:
        check_not_backdated(record.time, kept.time, record=record.id)
    except TraceError as exc:
        if is_the_logs():
            raise exc.located(index=index, record=record.id) from None


class LogFloor:
    """The floor a log's own checkpoints (verified as the log's, smallest first, none dated
    before a smaller one: `in_order`) set for the records read in log order: a record at index
    I follows every checkpoint of at most I records, so it is dated no more than the skew
    before the newest of them (review 67h, traces 1). A checkpoint is taken only once the
    records read hash to its root: one of another tree (a note of another log the log's
    identity signs) is the checkpoint's fault, `ROOT_MISMATCH` at the end, not its records'
    (review 67k, traces 1). Linear: each checkpoint is passed once."""

    def __init__(self, checkpoints: Sequence[Checkpoint], roots: Mapping[int, bytes]) -> None:
        self._checkpoints = checkpoints
        self._roots = roots  # the root of the first N records, for N read so far
        self._passed = 0  # how many of them precede the next record
        self._time: int | None = None  # the newest of those's time

    def check(self, index: int, record: TraceRecord) -> None:
        """Raise TraceError(BACKDATED) when `record`, at `index` (the next, in log order), is
        dated more than the skew before a checkpoint of at most `index` records whose root the
        records before it hash to."""
        while (
            self._passed < len(self._checkpoints) and self._checkpoints[self._passed].size <= index
        ):
            checkpoint = self._checkpoints[self._passed]
            if self._roots.get(checkpoint.size) == checkpoint.root:
                self._time = checkpoint.time
            self._passed += 1
        check_not_backdated(record.time, self._time, record=record.id)
