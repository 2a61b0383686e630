"""Review 67h: the checkpoint floor (review 63s traces 3, 66h, 66o) attacked again.

1. (Known limit of 66h, fixed.) `verify_log` with no kept note did not hold a record to the
   floor of the log's own signed checkpoints: a thief of an agent's retired key with write
   access to trace.db copied the checkpoint rows aside, deleted them, appended a record dated
   before the rotation (and before the checkpoint), and put the rows back. The log's own
   checkpoint, signed by its key at its time, shows the record was written after it, yet
   `verify_log(log)` read `unanchored` (no fault). A record at or past a checkpoint the log
   holds (verified as the log's) and dated more than the skew before it is now BACKDATED,
   naming the record (`LogVerifier.add`); an honest log never writes one (66h, the property).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, db, tool_call
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.limits import MAX_CLOCK_SKEW_SECONDS as SKEW
from troth.trace import TraceLog
from troth.trace.checkpoint import AnchorStatus
from troth.trace.signing import sign_record
from troth.trace.verify import verify_log

START = NOW + 10_000
OWNER, AGENT, THIEF = Held(), Held(), Held()
for _held in (OWNER, AGENT, THIEF):
    _held.signer(NOW)


def _owned(path: Path, clock: FixedClock) -> TraceLog:
    return TraceLog.open(path, clock=clock, signer=lambda now: OWNER.signer(NOW))


def _backdated_behind_put_back_rows(tmp_path: Path, *, back: int) -> TraceLog:
    """A log of one record and a checkpoint at START, then (the checkpoint rows set aside
    and put back) the thief's record dated `back` s before it."""
    log = _owned(tmp_path / "log.db", FixedClock(START))
    log.append(sign_record(AGENT.signer(NOW), tool_call(), seq=0, prev=None, time=START))
    log.checkpoint()
    raw = db(log)
    rows = raw.execute("SELECT size, root, time, note FROM checkpoints").fetchall()
    raw.execute("DELETE FROM checkpoints")
    raw.close()
    stolen = sign_record(
        THIEF.signer(NOW), tool_call("stolen"), seq=0, prev=None, time=START - back
    )
    with TraceLog.open(log.store.path, clock=FixedClock(START - back)) as writer:
        writer.append(stolen)
    raw = db(log)
    raw.executemany("INSERT INTO checkpoints (size, root, time, note) VALUES (?, ?, ?, ?)", rows)
    raw.close()
    return log


def test_the_logs_own_checkpoint_is_a_floor_without_a_kept_note(tmp_path: Path) -> None:
    """Traces 1: refused at record 1, BACKDATED (it read `unanchored`, no fault)."""
    log = _backdated_behind_put_back_rows(tmp_path, back=SKEW + 1)
    with pytest.raises(TraceError) as refused:
        verify_log(log)
    assert (refused.value.reason, refused.value.index) == (TraceFailure.BACKDATED, 1)
    log.close()


def test_a_record_exactly_the_skew_before_the_logs_checkpoint_is_taken(tmp_path: Path) -> None:
    """Traces 1, the bound: exactly the skew before it, as at append."""
    log = _backdated_behind_put_back_rows(tmp_path, back=SKEW)
    assert verify_log(log).status is AnchorStatus.UNANCHORED
    log.close()
