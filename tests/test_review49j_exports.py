"""Review 49j, offline verification of traces (issue #13) as someone who hands a verifier
files.

1. An export holding every line of its log (every index below its checkpoint's size) whose
   agent's chain skips a seq (a record deleted and the indices closed up by the log's
   operator, the tree re-signed), or starts past seq 0, verified: `verify_log` refuses the
   same log (`seq N after seq M`), and docs/traces.md says a deleted record is caught at the
   agent's next record; an export checked the chain only between records at consecutive
   seqs, taking the gap for lines left out, which a complete export has none of.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from tests.test_review34g_trace import _insert
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import TraceLog, verify_log
from troth.trace.export import export_jsonl, verify_export
from troth.trace.signing import sign_record


def _export(log: TraceLog) -> list[bytes]:
    out = io.StringIO()
    export_jsonl(log, out)
    return [line.encode() for line in out.getvalue().splitlines()]


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
