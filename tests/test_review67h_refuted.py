"""Review 67h: attacks on the checkpoint floor (`troth.trace.backdating`, the log's own
checkpoints since 67h traces 1) that did not work, each kept as a test of the defence it
names."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, db, tool_call
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.limits import MAX_CLOCK_SKEW_SECONDS as SKEW
from troth.trace import TraceLog
from troth.trace.checkpoint import AnchorStatus, sign_checkpoint
from troth.trace.signing import resolve_key, sign_record
from troth.trace.verify import verify_log

START = NOW + 10_000
AGENT, OTHER = Held(), Held()
for _held in (AGENT, OTHER):
    _held.signer(NOW)


def _planted(log: TraceLog, note: bytes, size: int, root: bytes, time: int) -> None:
    raw = db(log)
    raw.execute("DELETE FROM checkpoints WHERE size = ?", (size,))
    raw.execute("INSERT INTO checkpoints VALUES (?, ?, ?, ?)", (size, root, time, note))
    raw.close()


def _two_records(path: Path, owner: Held) -> TraceLog:
    log = TraceLog.open(path, clock=FixedClock(START), signer=lambda now: owner.signer(now))
    signer = AGENT.signer(NOW)
    first = log.append(sign_record(signer, tool_call(), seq=0, prev=None, time=START))
    log.checkpoint()
    log.append(sign_record(signer, tool_call(), seq=1, prev=first.hash, time=START))
    return log


def test_a_planted_checkpoint_dated_ahead_by_another_key_backdates_no_record(
    tmp_path: Path,
) -> None:
    """A checkpoint row of the honest size and root, signed by another identity's key a day
    ahead, put into trace.db: the honest record after it is not called backdated on its word;
    the checkpoint is refused as not the log's (CHECKPOINT_INVALID, before any record)."""
    owner = Held()
    owner.signer(NOW)
    log = _two_records(tmp_path / "log.db", owner)
    honest = log.latest_checkpoint()
    signer = OTHER.signer(NOW)
    ahead = START + 86_400
    epoch = resolve_key(signer.identity, signer.attestation)
    forged = sign_checkpoint(signer, epoch, honest.size, honest.root, ahead)
    _planted(log, forged.note, honest.size, honest.root, ahead)
    with pytest.raises(TraceError) as refused:
        verify_log(log)
    assert refused.value.reason is TraceFailure.CHECKPOINT_INVALID
    assert refused.value.index is None
    log.close()


def test_a_checkpoint_by_the_logs_retired_key_dated_ahead_backdates_no_record(
    tmp_path: Path,
) -> None:
    """The log's identity rotated; a thief of its retired key signs a checkpoint of the honest
    size and root dated a day ahead and puts it in place of the honest one: it is refused as
    signed after the key's retirement, not taken as a floor over the honest records after it."""
    owner = Held()
    retired = owner.signer(NOW)
    log = _two_records(tmp_path / "log.db", owner)
    honest = log.latest_checkpoint()
    owner.rotate(START + 100)
    owner.signer(START + 100)
    ahead = START + 86_400
    epoch = resolve_key(retired.identity, retired.attestation)
    forged = sign_checkpoint(retired, epoch, honest.size, honest.root, ahead)
    _planted(log, forged.note, honest.size, honest.root, ahead)
    log.checkpoint()  # the new key's checkpoint stores the rotated history in the log
    with pytest.raises(TraceError) as refused:
        verify_log(log)
    assert refused.value.reason is TraceFailure.CHECKPOINT_INVALID
    assert "after its retirement" in refused.value.detail
    assert refused.value.index is None
    log.close()


def test_a_crash_between_append_and_checkpoint_leaves_nothing_backdated(tmp_path: Path) -> None:
    """Records appended at a clock the skew behind, then the log reopened at a clock the skew
    ahead (a crash before the checkpoint, the clock corrected): the checkpoint signed then is
    dated at the clock, and every record, before and after it, verifies against it and the
    log's own checkpoints (no kept note)."""
    owner = Held()
    owner.signer(NOW)
    path = tmp_path / "log.db"
    log = _two_records(path, owner)
    log.close()
    signer = AGENT.signer(NOW)
    later = TraceLog.open(
        path, clock=FixedClock(START + 2 * SKEW), signer=lambda now: owner.signer(now)
    )
    note = later.checkpoint().note
    head = later.head(AGENT.identifier)
    assert head is not None
    later.append(sign_record(signer, tool_call(), seq=2, prev=head[1], time=START + SKEW))
    assert verify_log(later).status is AnchorStatus.UNANCHORED
    assert verify_log(later, anchor=note).status is AnchorStatus.VALID
    later.close()


def test_an_honest_log_across_its_key_renewal_holds_to_its_own_floor(tmp_path: Path) -> None:
    """The log's identity rotated between two checkpoints (the first signed by the retired
    key), its clock stepped back the skew after each: every record (the last exactly the skew
    before the newest checkpoint) verifies against the log's own checkpoints, no kept note; one
    second earlier is refused at append, as the verifier would refuse it."""
    owner = Held()
    owner.signer(NOW)
    clock = FixedClock(START)
    log = TraceLog.open(tmp_path / "log.db", clock=clock, signer=lambda now: owner.signer(now))
    signer = AGENT.signer(NOW)
    head = log.append(sign_record(signer, tool_call(), seq=0, prev=None, time=START))
    first = log.checkpoint()
    owner.rotate(START + 100)
    clock.advance(1000)
    head = log.append(sign_record(signer, tool_call(), seq=1, prev=head.hash, time=START + 1000))
    second = log.checkpoint()
    assert (first.time, second.time) == (START, START + 1000)
    clock.advance(-SKEW)
    other = OTHER.signer(NOW)
    late = sign_record(other, tool_call(), seq=0, prev=None, time=second.time - SKEW - 1)
    with pytest.raises(TraceError) as refused:
        log.append(late)
    assert refused.value.reason is TraceFailure.BACKDATED
    log.append(sign_record(other, tool_call(), seq=0, prev=None, time=second.time - SKEW))
    assert verify_log(log).status is AnchorStatus.UNANCHORED
    assert verify_log(log, anchor=first.note).status is AnchorStatus.VALID
    log.close()
