"""Review 69m: attacks on offline trace verification (`verify_log`, `verify_export`) and
checkpoints that found nothing, pinned as properties (issue #13: a tamper-evident log that
verifies offline, naming the first bad record).

- A trace.db edited: a record deleted in the middle (indices closed up), the tail deleted
  below a checkpoint, two records swapped, a record duplicated under another id: each named
  at the first bad record (CHAIN_BROKEN, TRUNCATED, REPLAYED).
- An export: a line of another log of the same agent spliced in, a line repeated: refused; its
  tail left out: verifies (an export may be filtered), its report counting fewer records than
  its checkpoint's size, never `valid` unanchored.
- A checkpoint signed by the log's rotated-away key (stolen), dated after the rotation, put
  in the log: refused (CHECKPOINT_INVALID).
- A split view (the log's file copied, each copy grown by another record and checkpointed at
  one size): refused against the other branch's kept note, as a log, an export or a prefix of
  its lines (FORKED); lines of both mixed: refused.
- The largest record the writer signs (ASCII, 4-byte characters, C1 controls) verifies in the
  log and as an export line.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, db, open_log, recorder, tool_call
from troth import limits
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import Decision, Kind, Links, RecordContent, ToolCall, TraceLog
from troth.trace.checkpoint import sign_checkpoint
from troth.trace.export import export_jsonl, verify_export
from troth.trace.merkle import Frontier, leaf_hash
from troth.trace.signing import resolve_key, sign_record
from troth.trace.verify import verify_log

_F = TraceFailure


def _log(path: Path, records: int, owner: Held | None = None) -> tuple[TraceLog, Held]:
    clock = FixedClock(NOW)
    log = open_log(path, clock, owner)
    agent = Held()
    signing = recorder(log, agent, clock)
    for _ in range(records):
        signing.record(tool_call())
    return log, agent


def _lines(log: TraceLog) -> list[bytes]:
    out = io.StringIO()
    export_jsonl(log, out)
    return [line.encode() for line in out.getvalue().splitlines()]


def _refused(call: object) -> TraceError:
    with pytest.raises(TraceError) as refused:
        call()  # type: ignore[operator]
    return refused.value


def _close_up(log: TraceLog, index: int) -> None:
    """Delete the record at `index` and close the indices up (leaves and size), as a thief
    with write access to trace.db would."""
    raw = db(log)
    raw.execute("DELETE FROM leaves WHERE idx = ?", (index,))
    raw.execute("UPDATE leaves SET idx = -idx WHERE idx > ?", (index,))
    raw.execute("UPDATE leaves SET idx = -idx - 1 WHERE idx < 0")
    raw.execute("UPDATE meta SET value = value - 1 WHERE name = 'size'")
    raw.close()


def test_a_record_deleted_in_the_middle_is_named_at_the_next(tmp_path: Path) -> None:
    """A record deleted, the indices closed up (no checkpoint): the agent's chain breaks at the
    record that took its index, named there."""
    log, _ = _log(tmp_path / "log.db", 5)
    _close_up(log, 2)
    refused = _refused(lambda: verify_log(log))
    assert (refused.reason, refused.index) == (_F.CHAIN_BROKEN, 2)
    assert refused.record is not None
    log.close()


def test_the_tail_deleted_below_a_checkpoint_is_truncated(tmp_path: Path) -> None:
    """The last record deleted with the log's size: the log's own checkpoint of 5 says it is
    short (a prefix is not `valid`)."""
    log, _ = _log(tmp_path / "log.db", 5)
    log.checkpoint()
    raw = db(log)
    raw.execute("DELETE FROM leaves WHERE idx = 4")
    raw.execute("UPDATE meta SET value = 4 WHERE name = 'size'")
    raw.close()
    assert _refused(lambda: verify_log(log)).reason is _F.TRUNCATED
    log.close()


def test_two_records_swapped_are_named_at_the_first(tmp_path: Path) -> None:
    log, _ = _log(tmp_path / "log.db", 4)
    raw = db(log)
    raw.execute("UPDATE leaves SET idx = -1 WHERE idx = 1")
    raw.execute("UPDATE leaves SET idx = 1 WHERE idx = 2")
    raw.execute("UPDATE leaves SET idx = 2 WHERE idx = -1")
    raw.close()
    refused = _refused(lambda: verify_log(log))
    assert (refused.reason, refused.index) == (_F.CHAIN_BROKEN, 1)
    log.close()


def test_a_record_duplicated_at_the_end_is_replayed(tmp_path: Path) -> None:
    log, _ = _log(tmp_path / "log.db", 3)
    raw = db(log)
    raw.execute(
        "INSERT INTO leaves (idx, record_id, leaf, envelope, disclosures, agent) "
        "SELECT 3, record_id || 'x', leaf, envelope, disclosures, agent FROM leaves WHERE idx = 1"
    )
    raw.close()
    refused = _refused(lambda: verify_log(log))
    assert (refused.reason, refused.index) == (_F.REPLAYED, 3)
    log.close()


def test_an_export_line_repeated_or_spliced_from_another_log_is_refused(tmp_path: Path) -> None:
    """One agent's records in two logs: a line of the other log's export among this one's
    (another checkpoint) is refused, as a line repeated is."""
    clock = FixedClock(NOW)
    agent = Held()
    logs = [open_log(tmp_path / f"{n}.db", clock) for n in (1, 2)]
    for log in logs:
        signing = recorder(log, agent, clock)
        for _ in range(3):
            signing.record(tool_call())
    mine, theirs = (_lines(log) for log in logs)
    spliced = _refused(lambda: verify_export([*mine, theirs[2]]))
    assert (spliced.reason, spliced.index) == (_F.MALFORMED, 2)
    assert "different checkpoints" in spliced.detail
    repeated = _refused(lambda: verify_export([*mine, mine[1]]))
    assert (repeated.reason, repeated.index) == (_F.REPLAYED, 1)
    for log in logs:
        log.close()


def test_an_export_missing_its_tail_counts_fewer_records_than_its_checkpoint(
    tmp_path: Path,
) -> None:
    """An export may be filtered (docs/traces.md): its tail left out verifies, but the report
    says how many records it verified beside the checkpoint's size, and against the log's
    newest note kept the verifier sees the gap."""
    log, _ = _log(tmp_path / "log.db", 5)
    lines = _lines(log)
    report = verify_export(lines[:3]).to_json()
    assert (report["records"], report["checkpoint"]["size"]) == (3, 5)
    assert report["valid"] is False
    log.close()


def test_a_checkpoint_by_a_rotated_away_log_key_is_refused(tmp_path: Path) -> None:
    """The log's identity rotated; its old key (stolen) signs a checkpoint of the log dated
    after the rotation: `verify_log` refuses it (its key retired before it was signed)."""
    owner = Held()
    log, _ = _log(tmp_path / "log.db", 3, owner)
    old = owner.signer(NOW)
    epoch = resolve_key(old.identity, old.attestation)
    log.checkpoint()
    owner.rotate(NOW + 100)
    clock = FixedClock(NOW + 200)
    reopened = TraceLog.open(log.store.path, clock=clock, signer=lambda now: owner.signer(now))
    log.close()
    signing = recorder(reopened, Held(), clock)
    signing.record(tool_call())
    reopened.checkpoint()  # by the new key: the log keeps the rotated history
    signing.record(tool_call())
    frontier = Frontier()
    for entry in reopened.stored():
        frontier.append(leaf_hash(entry.envelope))
    forged = sign_checkpoint(old, epoch, frontier.size, frontier.root(), NOW + 300)
    raw = db(reopened)
    raw.execute(
        "INSERT INTO checkpoints VALUES (?, ?, ?, ?)",
        (forged.size, forged.root, forged.time, forged.note),
    )
    raw.close()
    refused = _refused(lambda: verify_log(reopened))
    assert refused.reason is _F.CHECKPOINT_INVALID
    reopened.close()


def test_a_fork_is_refused_against_the_other_branchs_checkpoint(tmp_path: Path) -> None:
    """A split view: the log's file copied after 3 records, each copy given another 4th record
    and a checkpoint of 4 signed by the log's key (same size, other roots). The verifier that
    kept one branch's checkpoint refuses the other's log, its export and any prefix of its
    lines (FORKED); lines of both branches mixed are refused (two checkpoints)."""
    owner, agent, clock = Held(), Held(), FixedClock(NOW)
    first = open_log(tmp_path / "a.db", clock, owner)
    signing = recorder(first, agent, clock)
    for _ in range(3):
        signing.record(tool_call())
    first.close()
    shutil.copy(tmp_path / "a.db", tmp_path / "b.db")
    branches = []
    for name, order in (("a", "o1"), ("b", "o2")):
        log = open_log(tmp_path / f"{name}.db", clock, owner)
        recorder(log, agent, clock).record(tool_call(args={"order": order}))
        branches.append((log, log.checkpoint()))
    (mine, kept), (fork, theirs) = branches
    assert (kept.size, theirs.size) == (4, 4)
    assert kept.root != theirs.root
    lines = _lines(fork)
    whole = _refused(lambda: verify_export(lines, anchor=kept.note))
    prefix = _refused(lambda: verify_export(lines[:3], anchor=kept.note))
    logged = _refused(lambda: verify_log(fork, anchor=kept.note))
    assert {whole.reason, prefix.reason, logged.reason} == {_F.FORKED}
    mixed = _refused(lambda: verify_export([*_lines(mine)[:3], lines[3]]))
    assert (mixed.reason, mixed.index) == (_F.MALFORMED, 3)
    for log, _ in branches:
        log.close()


def _largest(policy: str) -> RecordContent:
    """A tool call whose texts are at their limits, naming as many policies of `policy`'s
    characters as a payload holds (MAX_TRACE_PAYLOAD_BYTES): one more is refused."""

    def content(count: int) -> RecordContent:
        ids = tuple(f"{n:03d}" + policy * (limits.MAX_TRACE_TEXT - 3) for n in range(count))
        return RecordContent(
            Kind.TOOL_INVOCATION,
            tool=ToolCall("t" * limits.MAX_TRACE_TEXT, "c" * limits.MAX_TRACE_TEXT),
            values={"args": "x"},
            decision=Decision("allow", "b" * limits.MAX_TRACE_TEXT, ids),
            links=Links(conversation="v" * limits.MAX_TRACE_TEXT),
        )

    signer = Held().signer(NOW)
    for count in range(limits.MAX_TRACE_POLICY_IDS, 0, -1):
        try:
            sign_record(signer, content(count), seq=0, prev=None, time=NOW)
        except TraceError as exc:
            if exc.reason is not _F.OVER_LIMIT:
                raise
            continue
        return content(count)
    raise AssertionError("no record signs")


@pytest.mark.parametrize("policy", ["p", "\U0001f600", "\u0085"])
def test_the_largest_record_the_writer_signs_verifies(tmp_path: Path, policy: str) -> None:
    """What the writer accepts the verifier accepts: a record whose payload is as large as
    signing takes (ASCII, 4-byte characters, a C1 control: escaped nowhere, NEL not a line
    break of a JSONL export read as bytes) verifies in the log and as an export line."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "log.db", clock)
    recorder(log, Held(), clock).record(_largest(policy))
    log.checkpoint()
    assert verify_log(log).size == 1
    out = io.StringIO()
    export_jsonl(log, out)
    assert verify_export(out.getvalue().encode().splitlines()).records == 1
    log.close()
