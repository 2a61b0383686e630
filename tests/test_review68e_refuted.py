"""Review 68e: attacks on the log's own checkpoints as a floor (`LogFloor`, `_kept_floor`,
`in_order`: reviews 67h, 67k, 67u) and on the feed pages a node serves again (`_current`,
`_newest`: reviews 67o, 67u) that did not work. Each test names the defence it pins.

Traces (the log, its checkpoint rows and the note a verifier kept, as a thief with the files
but not the log's key, or a disk, leaves them):

- a fork: two checkpoints of one size with different roots and one time, in either order,
  reads ROOT_MISMATCH (the checkpoint's fault), never valid, and no honest record BACKDATED;
- the log and its checkpoint rows truncated together (a tail of records dropped): against the
  note the verifier kept of the longer log, TRUNCATED;
- the kept note replaced by an older one of the same log (`--checkpoint` given an older
  file): the honest log verifies against it, a record written into the file behind it dated
  before it is still BACKDATED (its floor, or the log's own checkpoints');
- the log's clock a day ahead for one checkpoint, then put right: the records before it read
  valid (no false alarm on an honest log), and the log itself refuses a record dated before
  that checkpoint (BACKDATED at append), as the verifier would: the two agree;
- the log's file restored from a backup (a legitimate recovery: its later checkpoint lost)
  appends and verifies on, its next checkpoint a floor as before.

Feeds: a page at one `since` of another version (the feed grew, the same sequence with other
content) is never served for the new one; many distinct strangers' syncs keep the per-source
state bounded (`MAX_FEED_SIGN_SOURCES`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, db, tool_call
from tests.test_review67u_refuted import START, THIEF, _owned, _plant
from troth import limits
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.limits import MAX_CLOCK_SKEW_SECONDS as SKEW
from troth.trace import TraceLog
from troth.trace.checkpoint import Checkpoint
from troth.trace.signing import sign_record
from troth.trace.verify import LogVerifier, log_material, verify_log, verify_records

AGENT = Held()
AGENT.signer(NOW)


def _two(log: TraceLog, time: int, name: str = "refund") -> None:
    """Two records of AGENT dated `time` (the log's clock there)."""
    signer = AGENT.signer(NOW)
    first = log.append(sign_record(signer, tool_call(name), seq=0, prev=None, time=time))
    log.append(sign_record(signer, tool_call(name), seq=1, prev=first.hash, time=time))


def test_a_fork_of_one_size_and_time_is_the_checkpoints_fault_in_either_order(
    tmp_path: Path,
) -> None:
    """Two logs of the one identity, other records, checkpointed at one size and one second:
    both notes handed to the verifier of one, either order: ROOT_MISMATCH (not valid, not
    BACKDATED: the fork's note takes no part in the floor)."""
    log = _owned(tmp_path / "log.db", FixedClock(START))
    _two(log, START)
    mine = log.checkpoint()
    with _owned(tmp_path / "fork.db", FixedClock(START)) as fork:
        _two(fork, START, "wire")
        theirs = fork.checkpoint()
    assert (theirs.size, theirs.time) == (mine.size, mine.time)
    assert theirs.root != mine.root
    material = log_material(log)
    for notes in ([mine.note, theirs.note], [theirs.note, mine.note]):
        verifier = LogVerifier(replace(material, checkpoints=notes))
        with pytest.raises(TraceError) as refused:
            verify_records(verifier, log.stored(), None)
        assert refused.value.reason is TraceFailure.ROOT_MISMATCH
    log.close()


def test_the_log_and_its_checkpoints_truncated_together_read_truncated(tmp_path: Path) -> None:
    """A kept note of 2 records; the thief drops record 1 and the checkpoint rows (none of 1
    record to show): TRUNCATED against the kept note."""
    clock = FixedClock(START)
    log = _owned(tmp_path / "log.db", clock)
    _two(log, START)
    kept = log.checkpoint()
    raw = db(log)
    raw.execute("DELETE FROM leaves WHERE idx = 1")
    raw.execute("DELETE FROM checkpoints")
    raw.execute("UPDATE meta SET value = 1 WHERE name = 'size'")
    raw.close()
    with (
        TraceLog.open(log.store.path, clock=clock) as truncated,
        pytest.raises(TraceError) as refused,
    ):
        verify_log(truncated, anchor=kept.note)
    assert refused.value.reason is TraceFailure.TRUNCATED
    log.close()


def _older_kept(tmp_path: Path) -> tuple[TraceLog, Checkpoint, FixedClock]:
    """A log of 2 records checkpointed at START (kept, older), grown by 2 dated START + 4000
    and checkpointed then."""
    clock = FixedClock(START)
    log = _owned(tmp_path / "log.db", clock)
    _two(log, START)
    older = log.checkpoint()
    clock.advance(4_000)
    signer = Held().signer(NOW)
    first = log.append(sign_record(signer, tool_call(), seq=0, prev=None, time=START + 4_000))
    log.append(sign_record(signer, tool_call(), seq=1, prev=first.hash, time=START + 4_000))
    log.checkpoint()
    return log, older, clock


def test_an_older_kept_note_verifies_the_honest_log(tmp_path: Path) -> None:
    """`--checkpoint` given an older note of the log: valid against it (no false alarm)."""
    log, older, _ = _older_kept(tmp_path)
    report = verify_log(log, anchor=older.note)
    assert report.size == 4
    log.close()


def test_an_older_kept_note_leaves_the_logs_own_floor(tmp_path: Path) -> None:
    """The kept note swapped for the older one, and a record written into the file dated
    between the two checkpoints (within the older's skew, more than the skew before the
    newer): BACKDATED at record 4 all the same (the log's own checkpoint of 4 records)."""
    log, older, _ = _older_kept(tmp_path)
    _plant(log, START + 1_000)
    with pytest.raises(TraceError) as refused:
        verify_log(log, anchor=older.note)
    assert (refused.value.reason, refused.value.index) == (TraceFailure.BACKDATED, 4)
    log.close()


def test_a_checkpoint_dated_ahead_is_one_floor_for_the_log_and_its_verifier(
    tmp_path: Path,
) -> None:
    """The log's clock a day ahead for one checkpoint, then put right: its records read valid
    (the checkpoint covers them: no false alarm); a record dated now is refused BACKDATED by
    the log itself (docs: the log's clock was stepped back), so no record the log appends
    reads BACKDATED to a verifier."""
    clock = FixedClock(START)
    log = _owned(tmp_path / "log.db", clock)
    _two(log, START)
    clock.advance(86_400)
    ahead = log.checkpoint()
    clock.advance(-86_400 + 10)
    assert verify_log(log).size == 2
    late = sign_record(THIEF.signer(NOW), tool_call(), seq=0, prev=None, time=START + 10)
    with pytest.raises(TraceError) as refused:
        log.append(late)
    assert refused.value.reason is TraceFailure.BACKDATED
    assert ahead.time - late.record.time > SKEW
    assert verify_log(log).size == 2
    log.close()


def test_a_log_restored_from_its_backup_verifies_on(tmp_path: Path) -> None:
    """The log's file restored from a copy taken after its first checkpoint (a disk lost; the
    later checkpoint gone with it): records appended after the restore, dated as the clock
    says, verify (no floor of the lost checkpoint); the restored checkpoint is still one."""
    clock = FixedClock(START)
    path = tmp_path / "log.db"
    log = _owned(path, clock)
    _two(log, START)
    log.checkpoint()
    log.close()
    backup = tmp_path / "backup.db"
    backup.write_bytes(path.read_bytes())
    clock.advance(4_000)
    with _owned(path, clock) as lost:
        lost.append(
            sign_record(Held().signer(NOW), tool_call(), seq=0, prev=None, time=START + 4_000)
        )
        lost.checkpoint()
    path.write_bytes(backup.read_bytes())
    for extra in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        extra.unlink(missing_ok=True)
    with _owned(path, clock) as restored:
        signer = Held().signer(NOW)
        now = START + 4_000 - SKEW
        restored.append(sign_record(signer, tool_call(), seq=0, prev=None, time=now))
        assert restored.checkpoint().size == 3
        assert verify_log(restored).size == 3
    log = _owned(path, clock)
    _plant(log, START - SKEW - 1)
    with pytest.raises(TraceError) as refused:
        verify_log(log)
    assert (refused.value.reason, refused.value.index) == (TraceFailure.BACKDATED, 3)
    log.close()


def test_the_per_source_syncs_stay_bounded() -> None:
    """Many distinct strangers each start a sync: the class keeps MAX_FEED_SIGN_SOURCES."""
    from troth.node.services.authority import _Class

    strangers = _Class.of(limits.FEED_PAGE_SIGNS_FOR_STRANGERS)
    for n in range(limits.MAX_FEED_SIGN_SOURCES + 50):
        strangers.walk(n.to_bytes(8, "big"), NOW).next = n
    assert len(strangers.walks) == limits.MAX_FEED_SIGN_SOURCES
