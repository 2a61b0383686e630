"""Review 66h: attacks on the backdating rule (`troth.trace.backdating`) that did not work,
each kept as a test of the defence it names."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, db
from tests.test_review66h_backdating import AGENTS, START, Agent, owned, reason
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.limits import MAX_CLOCK_SKEW_SECONDS as SKEW
from troth.trace import TraceLog
from troth.trace.checkpoint import AnchorStatus, sign_checkpoint
from troth.trace.signing import resolve_key
from troth.trace.verify import verify_log


def put_in(log: TraceLog, agent: Agent, time: int) -> None:
    """Write `agent`'s next record dated `time` into `log`'s file past its checkpoints (as a
    thief with write access does: the checkpoint rows deleted, appended at a clock set back)."""
    raw = db(log)
    raw.execute("DELETE FROM checkpoints")
    raw.close()
    with TraceLog.open(log.store.path, clock=FixedClock(time)) as thief:
        agent.append(thief, time)


def test_records_exactly_at_the_boundary_are_judged_alike(tmp_path: Path) -> None:
    """A record dated exactly the skew before the newest checkpoint is taken by the log and by
    the verifier against that kept note; one second earlier is refused by both."""
    clock = FixedClock(START)
    log = owned(tmp_path / "log.db", clock)
    first, second, third = (Agent(held) for held in AGENTS)
    first.append(log, START)
    kept = log.checkpoint()
    clock.advance(-2 * SKEW)  # stepped back: records the skew before the checkpoint are in range
    second.append(log, kept.time - SKEW)
    assert reason(lambda: third.append(log, kept.time - SKEW - 1)) is TraceFailure.BACKDATED
    assert verify_log(log, anchor=kept.note).status is AnchorStatus.VALID
    put_in(log, third, kept.time - SKEW - 1)
    with pytest.raises(TraceError) as refused:
        verify_log(log, anchor=kept.note)
    assert (refused.value.reason, refused.value.index) == (TraceFailure.BACKDATED, 2)
    log.close()


def test_a_clock_stepped_back_between_checkpoints_neither_backdates_nor_wedges(
    tmp_path: Path,
) -> None:
    """The log's clock stepped back 500 s after a checkpoint: a record at its clock is
    refused (fix the clock), one the skew ahead of it (an agent's clock right) is taken, a
    checkpoint signed meanwhile is dated no earlier than the last (it lowers no floor), and once
    the clock is back records at it are taken again; every note verifies the log."""
    clock = FixedClock(START)
    log = owned(tmp_path / "log.db", clock)
    agent, late = Agent(AGENTS[0]), Agent(AGENTS[1])
    agent.append(log, START)
    kept = log.checkpoint()
    clock.advance(-500)
    assert reason(lambda: late.append(log, clock.now())) is TraceFailure.BACKDATED
    late.append(log, clock.now() + 250)
    again = log.checkpoint()
    assert again.time == kept.time
    clock.advance(500)
    late.append(log, clock.now())
    notes = [kept.note, again.note, log.checkpoint().note]
    for note in notes:
        assert verify_log(log, anchor=note).status is AnchorStatus.VALID
    log.close()


def test_agents_at_both_ends_of_the_skew_around_a_checkpoint(tmp_path: Path) -> None:
    """One agent's clock the whole skew ahead of the log's, another's the whole skew behind:
    the checkpoint after the first's record is dated at the log's clock (not the record's),
    so the second's record after it is taken and verifies against it."""
    clock = FixedClock(START)
    log = owned(tmp_path / "log.db", clock)
    ahead, behind = Agent(AGENTS[0]), Agent(AGENTS[1])
    ahead.append(log, START + SKEW)
    kept = log.checkpoint()
    assert kept.time == START
    behind.append(log, START - SKEW)
    assert verify_log(log, anchor=kept.note).status is AnchorStatus.VALID
    log.close()


def test_a_checkpoint_signed_after_the_logs_key_renewal_is_a_floor(tmp_path: Path) -> None:
    """The log's identity rotated and its checkpoint signed by the new key: the kept note is
    verified as the log's before its time is taken, and a record put in behind it is refused."""
    owner = Held()
    owner.signer(NOW)
    owner.rotate(START + 100)
    clock = FixedClock(START + 1000)
    log = TraceLog.open(tmp_path / "log.db", clock=clock, signer=lambda now: owner.signer(now))
    agent = Agent(AGENTS[0])
    agent.append(log, START + 1000)
    kept = log.checkpoint()
    assert verify_log(log, anchor=kept.note).status is AnchorStatus.VALID
    put_in(log, Agent(AGENTS[1]), START + 200)
    with pytest.raises(TraceError) as refused:
        verify_log(log, anchor=kept.note)
    assert (refused.value.reason, refused.value.index) == (TraceFailure.BACKDATED, 1)
    log.close()


def test_a_kept_note_dated_ahead_by_another_key_backdates_nothing(tmp_path: Path) -> None:
    """A kept note not the log's (another identity's key), dated a day ahead: the honest
    records after its size are not called backdated on its word; the note itself is refused,
    as it was before the rule (`the kept checkpoint: ...`)."""
    clock = FixedClock(START)
    log = owned(tmp_path / "log.db", clock)
    agent = Agent(AGENTS[0])
    agent.append(log, START)
    agent.append(log, START + 1)
    honest = log.checkpoint()
    other = Held()
    signer = other.signer(NOW)
    forged = sign_checkpoint(
        signer, resolve_key(signer.identity, signer.attestation), 1, honest.root, START + 86_400
    )
    with pytest.raises(TraceError) as refused:
        verify_log(log, anchor=forged.note)
    assert refused.value.reason is TraceFailure.CHECKPOINT_INVALID
    assert refused.value.index is None
    assert refused.value.detail.startswith("the kept checkpoint: ")
    log.close()


def test_another_process_checkpoint_is_read_by_the_appender(tmp_path: Path) -> None:
    """Records appended concurrently with a checkpoint, across processes: `first` appends
    (its caches warm), `second` (another process's object) signs a checkpoint at a clock 1000 s
    later; `first`'s next record, dated at its own clock, is refused: it reads the newest
    checkpoint in its write transaction, not from its caches."""
    first = owned(tmp_path / "log.db", FixedClock(START))
    agent = Agent(AGENTS[0])
    agent.append(first, START)
    second = owned(tmp_path / "log.db", FixedClock(START + 1000))
    second.checkpoint()
    assert reason(lambda: agent.append(first, START + 1)) is TraceFailure.BACKDATED
    agent.append(second, START + 1000 - SKEW)
    first.close()
    second.close()


def test_concurrent_appends_and_checkpoints_verify_against_every_note(tmp_path: Path) -> None:
    """Records appended concurrently with a checkpoint, in threads: agents append at the
    log's clock (stepped forward between checkpoints) while another thread checkpoints; every
    note verifies the whole log."""
    clock = FixedClock(START)
    log = owned(tmp_path / "log.db", clock)
    notes: list[bytes] = []
    refusals: list[TraceFailure] = []

    def appender(agent: Agent) -> None:
        for _ in range(6):
            said = reason(lambda: agent.append(log, clock.now()))
            if said is not None:
                refusals.append(said)

    threads = [threading.Thread(target=appender, args=(Agent(h),)) for h in AGENTS]
    for thread in threads:
        thread.start()
    for _ in range(4):
        notes.append(log.checkpoint().note)
        clock.advance(60)
    for thread in threads:
        thread.join()
    notes.append(log.checkpoint().note)
    assert refusals == []
    for note in notes:
        assert verify_log(log, anchor=note).status is AnchorStatus.VALID
    log.close()
