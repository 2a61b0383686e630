"""Review 62z (the lead's), otel 1: since review 62k (traces 4) the OTel export verifies each
record before its span is sent, by default over the log's own material alone. A node's
`troth trace export --format otel` (`export_node_otel`) then refused a log that its own
`troth trace verify` passes: a record under a chain whose issuer history is presented from a
checkpoint on the node's word (review 56q, chains 1). It now verifies with the node's
stored histories and held feeds, as `troth trace verify` does (`node_log_verifier`).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.cli import run
from tests.test_review56q_chains import superseded_issuer_chain
from troth.clock import SystemClock
from troth.errors import TraceError
from troth.node import open_node
from troth.node.trace_reads import export_node_otel
from troth.trace import open_node_log
from troth.trace.otel import export_otel


def test_a_node_exports_as_spans_the_log_its_verification_passes(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    superseded_issuer_chain(troth_home, int(time.time()))
    run("trace", "verify", "--node", "hub")
    exporter = InMemorySpanExporter()
    monkeypatch.setattr("troth.trace.otel.otlp_exporter", lambda endpoint: exporter)
    with open_node("hub") as node:
        assert export_node_otel(node, "http://127.0.0.1:9/v1/traces", clock=SystemClock()) == 1
        # the contrast: over the log's own material alone, the same log is refused
        with open_node_log(node, clock=SystemClock()) as log, pytest.raises(TraceError):
            export_otel(log, InMemorySpanExporter())
    assert len(exporter.get_finished_spans()) == 1
