"""Review 29b, prove 1: `prove` of a record whose row a crafted log moved below index 0 raised
ValueError from the Merkle tree ("index -5 is not in a tree of 3"), where review 28b (export 2)
made `export_jsonl` name such a log as `verify_log` does (TraceError MALFORMED): the trace
service's `prove` answered that member "internal error" (an unexpected exception, logged with
its traceback), the CLI a bare "index -5 is not in a tree of 3". (A row moved past the log's
size is named already: StorageError, "trace log damaged", from the log's own checks.)

Was a strict xfail until `prove` refused a record whose index is below 0 (TraceError MALFORMED,
located at the record), before asking the tree for its proof.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, db, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import TraceLog
from troth.trace.export import prove
from troth.trace.verify import verify_log


@pytest.fixture
def log(tmp_path: Path) -> Iterator[tuple[TraceLog, list[str]]]:
    """A log of three records of one agent and a checkpoint; the records' ids."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    rec = recorder(log, Held(), clock)
    ids = [rec.record(tool_call()).record for _ in range(3)]
    log.checkpoint()
    yield log, ids
    log.close()


@pytest.mark.parametrize("moved", [0, 2])
def test_a_record_moved_below_0_is_named_at_prove(
    log: tuple[TraceLog, list[str]], moved: int
) -> None:
    trace_log, ids = log
    to = -5
    conn = db(trace_log)
    conn.execute("UPDATE leaves SET idx = ? WHERE idx = ?", (to, moved))
    conn.close()
    with pytest.raises(TraceError):  # the verifier refuses the log
        verify_log(trace_log)
    with pytest.raises(TraceError) as caught:
        prove(trace_log, ids[moved])
    assert caught.value.reason is TraceFailure.MALFORMED
    assert (caught.value.index, caught.value.record) == (to, ids[moved])
    assert caught.value.detail == "not an index of the log's"
