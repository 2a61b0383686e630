"""Review 67k: attacks on the log's own checkpoints as a floor (`LogFloor`, review 67h traces 1)
that did not work, each kept as a test of the defence it names."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import cast, overload

import pytest

from tests.support.traces import NOW, Held, db, tool_call
from tests.test_review67h_traces import _backdated_behind_put_back_rows
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.limits import MAX_CLOCK_SKEW_SECONDS as SKEW
from troth.trace import TraceLog
from troth.trace.backdating import LogFloor
from troth.trace.checkpoint import AnchorStatus, Checkpoint
from troth.trace.record import TraceRecord
from troth.trace.signing import sign_record
from troth.trace.verify import LogVerifier, log_material, verify_log, verify_records

START = NOW + 10_000
AGENT, OTHER = Held(), Held()
for _held in (AGENT, OTHER):
    _held.signer(NOW)


class _Counted(Sequence[Checkpoint]):
    """Checkpoints that count how often one is read (past `limit`: a failure, at once)."""

    def __init__(self, items: list[Checkpoint], limit: int) -> None:
        self.items, self.reads, self.limit = items, 0, limit

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, index: int) -> Checkpoint: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Checkpoint]: ...
    def __getitem__(self, index: int | slice) -> Checkpoint | Sequence[Checkpoint]:
        self.reads += 1
        if self.reads > self.limit:
            raise AssertionError(f"more than {self.limit} reads of the checkpoints")
        return self.items[index]


class _CountedRoots(Mapping[int, bytes]):
    def __init__(self) -> None:
        self.reads = 0

    def __getitem__(self, size: int) -> bytes:
        self.reads += 1
        return b"r%d" % size

    def __len__(self) -> int:
        return 0

    def __iter__(self) -> Iterator[int]:
        return iter(())


def test_the_floor_reads_each_checkpoint_once_over_100k_records() -> None:
    """Memory and time with many checkpoints (bench row trace.verify.100k): 10,000 checkpoints
    and 100,000 records cost one read of each checkpoint and one more per record (the loop's
    test), never records times checkpoints; the floor still refuses the last record."""
    records, every = 100_000, 10
    marks = [
        Checkpoint("o", size, b"r%d" % size, START + size, b"", verified=True)
        for size in range(every, records + 1, every)
    ]
    checkpoints, roots = _Counted(marks, 2 * len(marks) + records), _CountedRoots()
    floor = LogFloor(checkpoints, roots)
    for index in range(records - 1):
        floor.check(index, cast(TraceRecord, SimpleNamespace(time=START + index, id="r")))
    late = cast(TraceRecord, SimpleNamespace(time=START - SKEW - 1 + records - every, id="x"))
    with pytest.raises(TraceError) as refused:
        floor.check(records - 1, late)
    assert refused.value.reason is TraceFailure.BACKDATED
    assert roots.reads <= len(marks)


@pytest.mark.parametrize("order", ["reversed", "duplicated"])
def test_checkpoints_out_of_order_or_twice_still_floor(tmp_path: Path, order: str) -> None:
    """The log's checkpoints handed to the verifier largest first, or each twice (a log bundle
    put together by hand): sorted and the floor holds, BACKDATED at the thief's record."""
    log = _backdated_behind_put_back_rows(tmp_path, back=SKEW + 1)
    material = log_material(log)
    log.checkpoint()  # a second checkpoint, of both records
    notes = list(log_material(log).checkpoints)
    notes = notes[::-1] if order == "reversed" else notes + notes
    verifier = LogVerifier(replace(material, checkpoints=notes))
    with pytest.raises(TraceError) as refused:
        verify_records(verifier, log.stored(), None)
    assert (refused.value.reason, refused.value.index) == (TraceFailure.BACKDATED, 1)
    log.close()


def _owner_log(path: Path, clock: FixedClock | None = None, owner: Held | None = None) -> TraceLog:
    who = owner or OTHER
    return TraceLog.open(path, clock=clock or FixedClock(START), signer=lambda now: who.signer(now))


def test_a_record_at_a_checkpoints_time_right_after_it_is_taken(tmp_path: Path) -> None:
    """A record appended at exactly a checkpoint's time, at the checkpoint's size: taken by the
    log and by `verify_log` (the floor is the skew before the checkpoint, not its time)."""
    with _owner_log(tmp_path / "log.db") as log:
        signer = AGENT.signer(NOW)
        first = log.append(sign_record(signer, tool_call(), seq=0, prev=None, time=START))
        mark = log.checkpoint()
        log.append(sign_record(signer, tool_call(), seq=1, prev=first.hash, time=mark.time))
        log.checkpoint()
        assert verify_log(log).status is AnchorStatus.UNANCHORED


def test_an_honest_clock_step_back_with_no_checkpoint_between_verifies(tmp_path: Path) -> None:
    """The log's clock stepped back an hour with no checkpoint since its last record: the
    records appended then precede the next checkpoint (dated no earlier than the skew before
    the newest record), so no floor holds them; the honest log verifies, unanchored."""
    clock = FixedClock(START + 3_600)
    with _owner_log(tmp_path / "log.db", clock) as log:
        log.append(sign_record(AGENT.signer(NOW), tool_call(), seq=0, prev=None, time=clock.now()))
        clock.advance(-3_600)
        log.append(sign_record(OTHER.signer(NOW), tool_call(), seq=0, prev=None, time=clock.now()))
        mark = log.checkpoint()
        assert mark.time == START + 3_600 - SKEW  # not before the newest record's skew
        assert verify_log(log).status is AnchorStatus.UNANCHORED


def test_the_floor_outlives_a_rotation_of_the_log_key(tmp_path: Path) -> None:
    """The log's identity rotated after the checkpoint the thief's record follows, and the new
    key signed the next checkpoint: the old key's checkpoint still verifies as the log's (it was
    signed before the rotation) and is the floor, BACKDATED at the record."""
    owner = Held()
    owner.signer(NOW)
    clock = FixedClock(START)
    log = _owner_log(tmp_path / "log.db", clock, owner)
    log.append(sign_record(AGENT.signer(NOW), tool_call(), seq=0, prev=None, time=START))
    log.checkpoint()
    raw = db(log)
    rows = raw.execute("SELECT size, root, time, note FROM checkpoints").fetchall()
    raw.execute("DELETE FROM checkpoints")
    raw.close()
    stolen = sign_record(
        Held().signer(NOW), tool_call("stolen"), seq=0, prev=None, time=START - SKEW - 1
    )
    with TraceLog.open(log.store.path, clock=FixedClock(START - SKEW - 1)) as writer:
        writer.append(stolen)
    raw = db(log)
    raw.executemany("INSERT INTO checkpoints (size, root, time, note) VALUES (?, ?, ?, ?)", rows)
    raw.close()
    owner.rotate(START + 100)
    clock.advance(200)
    assert log.checkpoint().size == 2
    with pytest.raises(TraceError) as refused:
        verify_log(log)
    assert (refused.value.reason, refused.value.index) == (TraceFailure.BACKDATED, 1)
    log.close()
