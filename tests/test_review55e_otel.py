"""Review 55e, otel 1 (left by review 53r): `export_otel` kept every span id it emitted in a
set, so that a signer's span id claimed twice is renamed (review 53r, otel 2): about 120 bytes
a span for the whole export, 1.2 GB for a log of ten million records. The ids are kept on disk
(`troth.trace.otel_ids.SpanIds`, a private temporary SQLite database): what the export holds
in memory no longer grows with the log.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Sequence
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tests.support.traces import log_of
from troth.trace.otel import export_otel

BATCH = 512


class _Measuring(SpanExporter):
    """Drops the spans; notes the memory the export's own code holds at its last batch (the
    batch itself is of BATCH spans whatever the log's size)."""

    def __init__(self) -> None:
        self.held = 0
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [
                tracemalloc.Filter(True, "*/troth/trace/otel.py"),
                tracemalloc.Filter(True, "*/troth/trace/otel_ids.py"),
            ]
        )
        self.held = sum(stat.size for stat in snapshot.statistics("filename"))
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _held(path: Path, records: int) -> int:
    log = log_of(path, records)
    exporter = _Measuring()
    tracemalloc.start()
    try:
        assert export_otel(log, exporter, batch=BATCH) == records
    finally:
        tracemalloc.stop()
    log.close()
    assert exporter.spans == records
    return exporter.held


def test_otel1_the_export_holds_no_more_for_more_spans(tmp_path: Path) -> None:
    small, large = _held(tmp_path / "small.db", 2 * BATCH), _held(tmp_path / "large.db", 8 * BATCH)
    assert large - small < 6 * BATCH * 16  # under 16 bytes a span more (a set: ~100)
