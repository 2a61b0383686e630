"""Review 67k: the log's own checkpoints as a floor (review 67h, traces 1: `LogFloor` in
`LogVerifier.add`) attacked.

traces 1. The floor took a checkpoint's time as soon as its note verified as the log's, before
   its root was compared with the records (that waits for `finish`): a note of another tree
   signed by the log's identity (another log it signs, or the same log before a reset; copied
   into trace.db) made an honest record after its size read BACKDATED, "a clock stepped back,
   or a record written into the log's file", where the fault is the checkpoint's: its first N
   records do not hash to its root (`ROOT_MISMATCH`, what `verify_log` said before 67h). A
   checkpoint is a floor only once the records read hash to its root (the root of its size is
   known when the record at its size is read); one that does not is left to `finish`.

traces 2. The same for the note a verifier kept (review 63s, traces 3: `check_after_kept`):
   a kept note of another tree the log's identity signed (a verifier that kept a note of
   another log of the same operator) made an honest record read BACKDATED; it is now judged
   as itself at the end (`INCONSISTENT`: the log's first N records have another root).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, db, tool_call
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import TraceLog
from troth.trace.checkpoint import Checkpoint
from troth.trace.signing import sign_record
from troth.trace.verify import verify_log

START = NOW + 10_000
OWNER, AGENT = Held(), Held()
for _held in (OWNER, AGENT):
    _held.signer(NOW)


def _log(path: Path, clock: FixedClock) -> TraceLog:
    return TraceLog.open(path, clock=clock, signer=lambda now: OWNER.signer(NOW))


def _honest_and_another(tmp_path: Path) -> tuple[TraceLog, Checkpoint]:
    """An honest log of 2 records (dated START) checkpointed at START + 6000, and a
    checkpoint of 1 record of another log its identity signs, at START + 5000."""
    clock = FixedClock(START)
    log = _log(tmp_path / "log.db", clock)
    signer = AGENT.signer(NOW)
    first = log.append(sign_record(signer, tool_call(), seq=0, prev=None, time=START))
    log.append(sign_record(signer, tool_call(), seq=1, prev=first.hash, time=START))
    clock.advance(6_000)
    log.checkpoint()
    with _log(tmp_path / "other.db", FixedClock(START + 5_000)) as other:
        stranger = Held().signer(NOW)
        other.append(sign_record(stranger, tool_call(), seq=0, prev=None, time=START + 5_000))
        return log, other.checkpoint()


def test_a_checkpoint_of_another_tree_is_not_a_floor(tmp_path: Path) -> None:
    """Traces 1: ROOT_MISMATCH, the checkpoint's fault (it was BACKDATED at record 1)."""
    log, planted = _honest_and_another(tmp_path)
    raw = db(log)
    raw.execute(
        "INSERT INTO checkpoints VALUES (?, ?, ?, ?)",
        (planted.size, planted.root, planted.time, planted.note),
    )
    raw.close()
    with pytest.raises(TraceError) as refused:
        verify_log(log)
    assert refused.value.reason is TraceFailure.ROOT_MISMATCH
    log.close()


def test_a_kept_note_of_another_tree_is_not_a_floor(tmp_path: Path) -> None:
    """Traces 2: INCONSISTENT, the kept note's fault (it was BACKDATED at record 1)."""
    log, planted = _honest_and_another(tmp_path)
    with pytest.raises(TraceError) as refused:
        verify_log(log, anchor=planted.note)
    assert (refused.value.reason, refused.value.index) == (TraceFailure.INCONSISTENT, None)
    log.close()
