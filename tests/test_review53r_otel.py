"""Review 53r: OpenTelemetry leftovers.

otel 1: the `SigningSpanProcessor` read no MCP server from a span, so a record it signed never
named one (`tool.server`, 53l) though the export writes `troth.tool.server`: it reads that
attribute (the conventions name no server of a tool), a name the gates refuse recorded as a
placeholder, the given text in `inputs`.

otel 2: a record's `links.span` is its signer's claim, so one agent's record could claim
another's span id and the OTel export emitted two spans under one id (a backend merges or drops
one: the other agent's span hidden). Span ids are the export's own, per signer; the claims are
attributes (`troth.claimed.span_id`, `troth.claimed.parent_span_id`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from troth import limits
from troth.clock import FixedClock
from troth.trace import TraceLog
from troth.trace.otel import SigningSpanProcessor, export_otel
from troth.trace.otel_names import (
    TROTH_CLAIMED_PARENT_SPAN_ID,
    TROTH_CLAIMED_SPAN_ID,
    TROTH_SPAN_RENAMED,
    TROTH_TOOL_SERVER,
)
from troth.trace.record import Links, TraceRecord, disclosed
from troth.trace.signing import RecordContent, open_envelope
from troth.trace.verify import verify_log

SPAN_B = "00000000000000b1"
PARENT_B = "00000000000000b0"
TRACE_B = "000000000000000000000000000000b2"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


def _linked(name: str, links: Links) -> RecordContent:
    return replace(tool_call(name), links=links)


def _records(log: TraceLog) -> list[TraceRecord]:
    return [open_envelope(e.envelope)[0] for e in log.stored()]


def _sign_tool_span(log: TraceLog, clock: FixedClock, attributes: dict[str, str]) -> TraceRecord:
    processor = SigningSpanProcessor(recorder(log, Held(), clock))
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("agent")
    with tracer.start_as_current_span(
        "execute_tool refund",
        attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "refund"}
        | attributes,
    ):
        pass
    assert (processor.recorded, processor.failures) == (1, 0)
    return _records(log)[0]


def test_otel1_a_span_names_its_tool_s_server(tmp_path: Path, clock: FixedClock) -> None:
    log = open_log(tmp_path / "trace.db", clock)
    record = _sign_tool_span(log, clock, {TROTH_TOOL_SERVER: "payments"})
    assert record.tool is not None
    assert (record.tool.name, record.tool.server) == ("refund", "payments")
    assert verify_log(log).size == 1
    exporter = InMemorySpanExporter()
    assert export_otel(log, exporter) == 1
    (span,) = exporter.get_finished_spans()
    assert (span.attributes or {})[TROTH_TOOL_SERVER] == "payments"


@pytest.mark.parametrize("server", ["pay ments", 'x"y', "a/b", "s" * 300, "é"])
def test_otel1_a_server_name_the_gates_refuse_is_no_server(
    tmp_path: Path, clock: FixedClock, server: str
) -> None:
    log = open_log(tmp_path / "trace.db", clock)
    record = _sign_tool_span(log, clock, {TROTH_TOOL_SERVER: server})
    assert record.tool is not None
    assert (record.tool.name, record.tool.server) == ("refund", "(not a server name)")
    inputs = json.loads(log.disclosures(record.id)["inputs"].value)
    assert inputs == {"server": disclosed(server, limits.MAX_TRACE_DENIED_DISCLOSURE_BYTES)}


def test_otel1_no_server_attribute_no_server(tmp_path: Path, clock: FixedClock) -> None:
    """Neither `server.address` (a network peer, not the name policies give a server) nor any
    mcp.* attribute is read as the server."""
    log = open_log(tmp_path / "trace.db", clock)
    record = _sign_tool_span(
        log, clock, {"server.address": "payments", "mcp.method.name": "tools/call"}
    )
    assert record.tool is not None
    assert record.tool.server is None


def test_otel2_another_agent_s_claimed_span_hides_no_span(
    tmp_path: Path, clock: FixedClock
) -> None:
    log = open_log(tmp_path / "trace.db", clock)
    b, a = recorder(log, Held(), clock), recorder(log, Held(), clock)
    links = Links(trace=TRACE_B, span=SPAN_B, parent_span=PARENT_B)
    a.record(_linked("lookup", links))  # A claims B's ids first
    b.record(_linked("refund", links))
    exporter = InMemorySpanExporter()
    assert export_otel(log, exporter) == 2
    spans = exporter.get_finished_spans()
    ids = {(s.context.trace_id, s.context.span_id) for s in spans if s.context is not None}
    assert len(ids) == 2
    for span in spans:
        assert (span.attributes or {})[TROTH_CLAIMED_SPAN_ID] == SPAN_B
        assert (span.attributes or {})[TROTH_CLAIMED_PARENT_SPAN_ID] == PARENT_B
        assert span.context is not None
        assert span.context.trace_id == int(TRACE_B, 16)
    parents = {s.parent.span_id for s in spans if s.parent is not None}
    assert len(parents) == 2  # each under its own signer's span PARENT_B, not the other's


def test_otel2_one_agent_s_span_claimed_twice_is_renamed(tmp_path: Path, clock: FixedClock) -> None:
    log = open_log(tmp_path / "trace.db", clock)
    agent = recorder(log, Held(), clock)
    links = Links(trace=TRACE_B, span=SPAN_B)
    agent.record(_linked("refund", links))
    agent.record(_linked("lookup", links))
    exporter = InMemorySpanExporter()
    assert export_otel(log, exporter) == 2
    first, second = exporter.get_finished_spans()
    assert first.context is not None
    assert second.context is not None
    assert first.context.span_id != second.context.span_id
    assert (first.attributes or {}).get(TROTH_SPAN_RENAMED) is None
    assert (second.attributes or {})[TROTH_SPAN_RENAMED] is True


def test_otel2_a_processor_s_tree_is_kept(tmp_path: Path, clock: FixedClock) -> None:
    """The spans of one signer keep their tree: a child's parent is its parent's span."""
    log = open_log(tmp_path / "trace.db", clock)
    agent = recorder(log, Held(), clock)
    agent.record(_linked("lookup", Links(trace=TRACE_B, span=SPAN_B, parent_span=PARENT_B)))
    agent.record(_linked("refund", Links(trace=TRACE_B, span=PARENT_B)))
    exporter = InMemorySpanExporter()
    export_otel(log, exporter)
    child, parent = exporter.get_finished_spans()
    assert child.parent is not None
    assert parent.context is not None
    assert child.parent.span_id == parent.context.span_id
