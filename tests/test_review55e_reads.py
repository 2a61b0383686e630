"""Review 55e, reads 1: `TraceLog.stored()` (what `troth trace verify`, `troth trace export` in
both formats and `trace show` read a log by) fetched 4,096 rows at a time, each with its
envelope and its disclosures. A record may disclose up to MAX_TRACE_RECORD_DISCLOSURE_BYTES
(555,496 bytes: its signer and the trace service take it), so verifying or exporting an honest
log of such records held up to 4,096 of them at once, about 2.2 GiB, before the first was
verified. Each read now also stops at MAX_TRACE_READ_BYTES of envelopes and disclosures (at
least one row): the memory a read holds is bounded whatever the records hold.
"""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from troth import limits
from troth.clock import FixedClock
from troth.trace import TraceLog
from troth.trace.export import export_jsonl
from troth.trace.verify import verify_log

RECORDS = 40
MIB = 1024 * 1024


def _largest_records(path: Path) -> TraceLog:
    """A log of RECORDS records, each disclosing the most one record may (the writer's own
    limits), about 21 MiB in all."""
    clock = FixedClock(NOW)
    log = open_log(path, clock)
    agent = recorder(log, Held(), clock)
    most = limits.MAX_TRACE_DISCLOSURE_BYTES - 2  # a value's JSON: quoted
    rest = limits.MAX_TRACE_RECORD_DISCLOSURE_BYTES - 2 * limits.MAX_TRACE_DISCLOSURE_BYTES
    for _ in range(RECORDS):
        agent.record(tool_call(args="a" * most, result="r" * most, reasoning="w" * (rest - 2)))
    return log


def _peak(call: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


class _Discarded(io.StringIO):
    def write(self, text: str) -> int:
        return len(text)


def _exported(log: TraceLog) -> None:
    export_jsonl(log, _Discarded())


@pytest.mark.parametrize("reader", [verify_log, _exported])
def test_reads1_reading_a_log_of_the_largest_records_holds_a_bounded_part_of_it(
    tmp_path: Path, reader: Callable[[TraceLog], object]
) -> None:
    log = _largest_records(tmp_path / "trace.db")
    held = RECORDS * limits.MAX_TRACE_RECORD_DISCLOSURE_BYTES
    assert held > 20 * MIB
    assert verify_log(log).size == RECORDS
    peak = _peak(lambda: reader(log))
    # one read, and a few copies of one record (its bundle, its text)
    assert peak < 2 * limits.MAX_TRACE_READ_BYTES + 4 * limits.MAX_TRACE_RECORD_DISCLOSURE_BYTES
    log.close()
