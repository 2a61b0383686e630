"""Review 34g, traces: exports and the per-agent chain.

1. `verify_export` checks each agent's chain between consecutive records present by filing
   every line under (agent, seq): a second record at a seq already seen replaced the first,
   so two records an agent signed at one seq (a fork of its chain: two versions of one step,
   "refund 20" and "refund 5000") verified as one export, where `verify_log` refuses the same
   log (`seq N after seq N`). Whoever holds the log's key (an operator colluding with the
   agent, a log re-signed after an edit) wrote both into one checkpointed tree.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, db, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import TraceLog, verify_log
from troth.trace.export import export_jsonl, verify_export


def _forked_log(tmp_path: Path) -> TraceLog:
    """A log holding two records of one agent at seq 1, both naming its seq 0 (the agents
    row put back between them, as a log's operator can)."""
    clock, owner, agent = FixedClock(NOW), Held(), Held()
    log = open_log(tmp_path / "trace.db", clock, owner)
    rec = recorder(log, agent, clock)
    rec.record(tool_call(args={"amount": 20}))
    raw = db(log)
    head = raw.execute("SELECT * FROM agents").fetchall()
    rec.record(tool_call(args={"amount": 20}, result="refunded 20"))
    log.close()
    raw.execute("DELETE FROM agents")
    raw.executemany("INSERT INTO agents VALUES (?, ?, ?, ?, ?)", head)
    raw.close()
    forked = open_log(tmp_path / "trace.db", clock, owner)
    recorder(forked, agent, clock).record(tool_call(args={"amount": 5000}, result="refunded 5000"))
    return forked


def test_an_export_with_two_records_at_one_seq_is_refused(tmp_path: Path) -> None:
    """Trace 1: an export holding two records of one agent at one seq is refused as a broken
    chain, as the log itself is (was a strict xfail until `verify_export` refused a seq seen
    twice)."""
    log = _forked_log(tmp_path)
    with pytest.raises(TraceError) as whole:
        verify_log(log)
    assert whole.value.reason is TraceFailure.CHAIN_BROKEN
    out = io.StringIO()
    export_jsonl(log, out)
    lines = [line.encode() for line in out.getvalue().splitlines()]
    assert len(lines) == 3
    with pytest.raises(TraceError) as caught:
        verify_export(lines)
    assert caught.value.reason is TraceFailure.CHAIN_BROKEN
    assert "seq 1" in caught.value.detail
