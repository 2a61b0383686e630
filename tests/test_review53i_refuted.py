"""Review 53i: attacks on signed traces (issue #13) that the code already refuses, pinned.

Each test is one attack tried against the collector, the log or the offline verifiers, and
the refusal it met."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, bare_collector, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import Decision, Kind, Links, RecordContent
from troth.trace.batcher import TraceBatcher
from troth.trace.export import export_jsonl, verify_bundle, verify_export
from troth.trace.log import TraceLog
from troth.trace.submit import Status, Submission, SubmittedRecord
from troth.trace.verify import verify_log


def _batch(who: Held, count: int, *, at: int = NOW) -> Submission:
    """`count` tool calls of `who`, signed at `at` as its first records in a log."""
    batcher = TraceBatcher(lambda now: who.signer(now))
    batcher.set_head(None)
    for _ in range(count):
        batcher.add(tool_call(), now=at)
    batch = batcher.next_batch(at)
    assert batch is not None
    return batch.submission


def _log(tmp_path: Path, name: str = "trace.db") -> TraceLog:
    return open_log(tmp_path / name, FixedClock(NOW))


def test_a_member_submitting_another_agents_batch_is_refused_whole(tmp_path: Path) -> None:
    """Agent A sends B's signed batch (B's history, B's records) as its own submission: every
    record refused SIGNER_INVALID, nothing appended."""
    log = _log(tmp_path)
    a, b = Held(), Held()
    receipts = bare_collector(log, None).submit(_batch(b, 2), submitter=a.identifier, now=NOW)
    assert [r.reason for r in receipts.results] == [TraceFailure.SIGNER_INVALID] * 2
    assert log.size() == 0
    assert log.head(b.identifier) is None


def test_a_record_naming_another_agent_in_ones_own_batch_is_refused(tmp_path: Path) -> None:
    """A's batch (A's history and attestations) carrying one of B's records: that one refused
    SIGNER_INVALID, A's own appended."""
    log = _log(tmp_path)
    a, b = Held(), Held()
    own, theirs = _batch(a, 1), _batch(b, 1)
    mixed = dataclasses.replace(
        own,
        attestations=own.attestations + theirs.attestations,
        records=own.records + theirs.records,
    )
    results = bare_collector(log, None).submit(mixed, submitter=a.identifier, now=NOW).results
    assert results[0].status is Status.APPENDED
    assert results[1].reason is TraceFailure.SIGNER_INVALID
    assert log.head(b.identifier) is None


def test_records_dated_past_the_logs_window_either_way_are_refused(tmp_path: Path) -> None:
    """A record dated 301 s ahead of the log's clock, or 301 s behind it: TIME_OUT_OF_RANGE;
    300 s ahead is taken (the documented window)."""
    log = _log(tmp_path)
    collector = bare_collector(log, None)
    for skew in (301, -301):
        who = Held(now=NOW - 1000)  # its key could sign at either time
        (result,) = collector.submit(_batch(who, 1, at=NOW + skew), submitter=None, now=NOW).results
        assert result.reason is TraceFailure.TIME_OUT_OF_RANGE, (skew, result)
    (result,) = collector.submit(_batch(Held(), 1, at=NOW + 300), submitter=None, now=NOW).results
    assert result.status is Status.APPENDED


def test_a_bad_record_mid_batch_refuses_it_and_those_chained_after_it_only(
    tmp_path: Path,
) -> None:
    """Three records; the second's signature flipped: the first appended, the second refused
    BAD_SIGNATURE and never stored, the third (chained after it) refused CHAIN_BROKEN; the
    log verifies and holds one record."""
    log = _log(tmp_path)
    who = Held()
    submission = _batch(who, 3)
    bad = bytearray(submission.records[1].envelope)
    at = bad.index(b'"sig":"') + 8
    bad[at] = ord("A") if bad[at] != ord("A") else ord("B")
    records = list(submission.records)
    records[1] = SubmittedRecord(bytes(bad), records[1].disclosures)
    forged = dataclasses.replace(submission, records=tuple(records))
    results = bare_collector(log, None).submit(forged, submitter=who.identifier, now=NOW).results
    assert [r.status for r in results] == [Status.APPENDED, Status.REFUSED, Status.REFUSED]
    assert results[1].reason is TraceFailure.BAD_SIGNATURE
    assert results[2].reason is TraceFailure.CHAIN_BROKEN
    assert log.size() == 1
    assert verify_log(log).size == 1


def test_a_record_claiming_another_seq_is_refused(tmp_path: Path) -> None:
    """A signs its first record in a log as seq 1 (taking a number it does not hold):
    CHAIN_BROKEN, nothing appended."""
    log = _log(tmp_path)
    who = Held()
    batcher = TraceBatcher(lambda now: who.signer(now))
    batcher.set_head(None)
    batcher.add(tool_call(), now=NOW)
    batcher.add(tool_call(), now=NOW)
    batch = batcher.next_batch(NOW)
    assert batch is not None
    second_only = dataclasses.replace(batch.submission, records=batch.submission.records[1:])
    (result,) = bare_collector(log, None).submit(second_only, submitter=None, now=NOW).results
    assert result.reason is TraceFailure.CHAIN_BROKEN
    assert log.size() == 0


def test_a_resolution_by_an_identity_the_escalation_did_not_ask_is_refused(
    tmp_path: Path,
) -> None:
    """A asks H; a third identity M (a member, not asked) signs a resolution of it: refused
    LINK_INVALID at append, nothing stored."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    agent, human, meddler = Held(), Held(), Held()
    asked = recorder(log, agent, clock).escalate(human.identifier, question="refund 10?")
    with pytest.raises(TraceError) as refused:
        recorder(log, meddler, clock).resolve(
            asked.record, of=agent.identifier, outcome="approved", considered="x", reasoning="y"
        )
    assert refused.value.reason is TraceFailure.LINK_INVALID
    assert log.size() == 1
    assert log.head(meddler.identifier) is None


def test_a_resolution_linked_to_a_record_that_is_no_escalation_is_refused(
    tmp_path: Path,
) -> None:
    """H signs a resolution naming A's tool call (no escalation) as its parent: refused."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    agent, human = Held(), Held()
    step = recorder(log, agent, clock).record(tool_call())
    content = RecordContent(
        Kind.RESOLUTION,
        values={"inputs": "x", "reasoning": "y"},
        decision=Decision("approved"),
        links=Links(parent=step.record, parent_agent=agent.identifier),
    )
    with pytest.raises(TraceError) as refused:
        recorder(log, human, clock).record(content)
    assert refused.value.reason is TraceFailure.LINK_INVALID


def test_a_bundle_with_another_logs_checkpoint_and_proof_is_refused(tmp_path: Path) -> None:
    """A record's bundle from log 1, its checkpoint, proof and log history swapped for log 2's
    (a log of the same size, the record not in it): the proof does not verify."""
    clock = FixedClock(NOW)
    one, two = open_log(tmp_path / "one.db", clock), open_log(tmp_path / "two.db", clock)
    agent, other = Held(), Held()
    recorder(one, agent, clock).record(tool_call())
    recorder(two, other, clock).record(tool_call())
    bundles = []
    for log in (one, two):
        out = io.StringIO()
        export_jsonl(log, out)
        bundles.append(out.getvalue().splitlines()[0])
    mine, theirs = (json.loads(line) for line in bundles)
    mixed = {**mine, "checkpoint": theirs["checkpoint"], "log": theirs["log"]}
    mixed["proof"] = theirs["proof"]
    with pytest.raises(TraceError) as refused:
        verify_bundle(json.dumps(mixed).encode())
    assert refused.value.reason is TraceFailure.PROOF_INVALID
    # and each verifies with its own log's
    assert verify_bundle(bundles[0].encode()).record.agent == agent.identifier


def test_a_redaction_leaves_the_signed_bytes_and_a_swapped_value_is_caught(
    tmp_path: Path,
) -> None:
    """Redacting a record's args changes no signed byte (the log still verifies, the leaf is
    the same); an export whose disclosed value was swapped for another is refused."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    who = Held()
    receipt = recorder(log, who, clock).record(tool_call())
    out = io.StringIO()
    export_jsonl(log, out)
    line = out.getvalue().splitlines()[0]
    swapped = line.replace('"amount":20', '"amount":2000')
    assert swapped != line
    with pytest.raises(TraceError) as refused:
        verify_export([swapped.encode()])
    assert refused.value.reason is TraceFailure.DISCLOSURE_MISMATCH
    assert log.redact(receipt.record, "args", agent=who.identifier)
    assert log.find(receipt.record, who.identifier).leaf == receipt.leaf
    assert verify_log(log).size == 1
