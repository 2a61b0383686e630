"""Review 49j, offline verification of traces (issue #13) as someone who hands a verifier
files.

1. An export holding every line of its log (every index below its checkpoint's size) whose
   agent's chain skips a seq (a record deleted and the indices closed up by the log's
   operator, the tree re-signed), or starts past seq 0, verified: `verify_log` refuses the
   same log (`seq N after seq M`), and docs/traces.md says a deleted record is caught at the
   agent's next record; an export checked the chain only between records at consecutive
   seqs, taking the gap for lines left out, which a complete export has none of.
2. A complete export holding a resolution of an escalation the log does not hold (deleted,
   the indices closed up) verified: `verify_log` refuses it (`parent X is not an escalation
   in the log`); an export checked a resolution only against an escalation among its lines.
3. The export of 1 with a later line badly signed (refused alone): the export was no longer
   taken as complete, so the later line's bad signature was named, not the gap before it
   (review 48i: the first bad record is the one of the lowest index). A refused line counts
   as present for the gap (it may hold the missing seq only at a lower index than the record
   after the gap, its own fault then the first).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from tests.test_review34g_trace import _insert
from tests.test_review48i_firstbad import _badly_signed
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import TraceLog, verify_log
from troth.trace.export import export_jsonl, verify_export
from troth.trace.record import Decision, Kind, Links
from troth.trace.signing import RecordContent, sign_record


def _export(log: TraceLog) -> list[bytes]:
    out = io.StringIO()
    export_jsonl(log, out)
    return [line.encode() for line in out.getvalue().splitlines()]


_OWNERS: dict[Path, Held] = {}


def log_owner(log: TraceLog) -> Held:
    return _OWNERS[log.store.path]


def _skipping(tmp_path: Path, first: int, second: int) -> tuple[TraceLog, int]:
    """A log: another agent's seq 0 (record 0), then the agent's records at seqs `first` and
    `second` (records 1 and 2, the second naming the first's hash), written by the log's
    operator. Returns the reopened log and the number of lines."""
    clock, owner, agent, other = FixedClock(NOW), Held(), Held(), Held()
    log = open_log(tmp_path / "trace.db", clock, owner)
    recorder(log, other, clock).record(tool_call())
    log.close()
    prev = None if first == 0 else bytes(32)
    one = sign_record(agent.signer(NOW), tool_call(), seq=first, prev=prev, time=NOW)
    _insert(log, 1, one)
    two = sign_record(agent.signer(NOW), tool_call(), seq=second, prev=one.hash, time=NOW)
    _insert(log, 2, two)
    _OWNERS[log.store.path] = owner
    return open_log(tmp_path / "trace.db", clock, owner), 3


@pytest.mark.parametrize(("first", "second", "index"), [(0, 2, 2), (1, 2, 1)])
def test_a_complete_export_whose_chain_skips_a_seq_is_refused(
    tmp_path: Path, first: int, second: int, index: int
) -> None:
    """1: every line present, the gap is a record deleted: refused at the record after it."""
    log, count = _skipping(tmp_path, first, second)
    with pytest.raises(TraceError) as whole:
        verify_log(log)
    assert (whole.value.reason, whole.value.index) == (TraceFailure.CHAIN_BROKEN, index)
    lines = _export(log)
    assert len(lines) == count
    for order in (lines, lines[::-1]):
        with pytest.raises(TraceError) as caught:
            verify_export(order)
        assert (caught.value.reason, caught.value.index) == (TraceFailure.CHAIN_BROKEN, index)
    verify_export([lines[0], lines[2]])  # some lines left out: the gap may be one of them


def _orphan(tmp_path: Path) -> TraceLog:
    """A log: the agent's record (record 0), then a human's resolution of an escalation of
    the agent the log does not hold (record 1: the escalation deleted by the log's operator,
    the indices closed up)."""
    clock, owner, agent, human = FixedClock(NOW), Held(), Held(), Held()
    log = open_log(tmp_path / "trace.db", clock, owner)
    recorder(log, agent, clock).record(tool_call())
    log.close()
    content = RecordContent(
        Kind.RESOLUTION,
        values={"inputs": "nothing", "reasoning": "approved"},
        decision=Decision("approved"),
        links=Links(parent="0123456789abcdef0123456789abcdef", parent_agent=agent.identifier),
    )
    _insert(log, 1, sign_record(human.signer(NOW), content, seq=0, prev=None, time=NOW))
    return open_log(tmp_path / "trace.db", clock, owner)


def test_a_complete_export_with_a_resolution_of_no_escalation_is_refused(tmp_path: Path) -> None:
    """2: every line present, the escalation is not in the log: refused at the resolution, as
    `verify_log` refuses it; an export without some line may be without the escalation."""
    log = _orphan(tmp_path)
    with pytest.raises(TraceError) as whole:
        verify_log(log)
    assert (whole.value.reason, whole.value.index) == (TraceFailure.LINK_INVALID, 1)
    lines = _export(log)
    for order in (lines, lines[::-1]):
        with pytest.raises(TraceError) as caught:
            verify_export(order)
        assert (caught.value.reason, caught.value.index) == (TraceFailure.LINK_INVALID, 1)
    verify_export(lines[1:])


def test_a_gap_before_a_badly_signed_line_is_the_first_fault(tmp_path: Path) -> None:
    """3: every line present, one after the gap badly signed (refused alone): the gap, at the
    lower index, is the first bad record (review 48i), as `verify_log` names it."""
    log, _count = _skipping(tmp_path, 0, 2)
    log.close()
    third = sign_record(Held().signer(NOW), tool_call(), seq=0, prev=None, time=NOW)
    _insert(log, 3, third)
    lines = _export(open_log(tmp_path / "trace.db", FixedClock(NOW), log_owner(log)))
    lines[3] = _badly_signed(lines[3])
    for order in (lines, lines[::-1]):
        with pytest.raises(TraceError) as caught:
            verify_export(order)
        assert (caught.value.reason, caught.value.index) == (TraceFailure.CHAIN_BROKEN, 2)
