"""Exports: JSONL evaluation sets and proof bundles that verify with the network off, OTel spans
with the GenAI and troth attributes (in-memory exporter, and OTLP/HTTP to a local sink), and the
span processor that signs an instrumented agent's spans."""

from __future__ import annotations

import io
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.crypto import sha256
from troth.errors import TraceError, TraceFailure
from troth.trace import AnchorStatus, Kind, TraceLog
from troth.trace.export import export_jsonl, prove, verify_bundle, verify_export
from troth.trace.otel import SigningSpanProcessor, export_otel, otlp_exporter
from troth.trace.signing import open_envelope
from troth.trace.verify import verify_log
from troth.trace.view import trace_tree


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def log(tmp_path: Path, clock: FixedClock) -> TraceLog:
    log = open_log(tmp_path / "trace.db", clock)
    agent, human = Held(), Held()
    rec, person = recorder(log, agent, clock), recorder(log, human, clock)
    step = rec.record(tool_call())
    rec.record(tool_call("lookup", args={"order": "o1"}))
    asked = rec.escalate(
        human.identifier, question="refund 5000?", reasoning="limit", parent=step.record
    )
    person.resolve(
        asked.record,
        of=agent.identifier,
        outcome="approved",
        considered="order history",
        reasoning="loyal",
    )
    return log


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No network: any socket creation fails."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _export(log: TraceLog) -> list[bytes]:
    out = io.StringIO()
    export_jsonl(log, out)
    return [line.encode() for line in out.getvalue().splitlines()]


def test_jsonl_export_verifies_offline(log: TraceLog, offline: None) -> None:
    lines = _export(log)
    assert len(lines) == 4
    first = json.loads(lines[0])
    assert set(first) >= {
        "envelope",
        "record",
        "proof",
        "checkpoint",
        "signer",
        "log",
        "disclosures",
    }
    assert first["disclosures"]["args"]["value"] == {"order": "o1", "amount": 20}
    report = verify_export(lines)
    assert (report.records, report.agents, report.status) == (4, 2, AnchorStatus.UNANCHORED)
    assert report.checkpoint is not None
    anchored = verify_export(lines, anchor=report.checkpoint.note)
    assert anchored.status is AnchorStatus.VALID
    with pytest.raises(OSError, match="network is off"):
        socket.create_connection(("127.0.0.1", 9))  # (the fixture really is in force)


def test_each_line_verifies_alone_and_in_any_order(log: TraceLog) -> None:
    lines = _export(log)
    for line in lines:
        verify_bundle(line)
    report = verify_export(list(reversed(lines)))
    assert report.records == 4


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda v: v.update(index=v["index"] + 1), TraceFailure.PROOF_INVALID),
        (lambda v: v["proof"].pop(), TraceFailure.PROOF_INVALID),
        (lambda v: v["record"].update(kind="decision"), TraceFailure.MALFORMED),
        (
            lambda v: v["disclosures"]["result"].update(value="refused"),
            TraceFailure.DISCLOSURE_MISMATCH,
        ),
        (
            lambda v: v.update(checkpoint=v["checkpoint"].replace("\n4\n", "\n5\n")),
            TraceFailure.CHECKPOINT_INVALID,
        ),
        (
            lambda v: v["signer"].update(attestation=v["log"]["attestations"][0]),
            TraceFailure.UNKNOWN_KEY,
        ),
        (
            lambda v: v.update(envelope=v["envelope"].replace('"sig":"', '"sig":"A', 1)),
            TraceFailure.MALFORMED,
        ),
    ],
)
def test_tampered_lines_are_refused(log: TraceLog, edit: Any, reason: TraceFailure) -> None:
    value = json.loads(_export(log)[0])
    edit(value)
    with pytest.raises(TraceError) as caught:
        verify_bundle(json.dumps(value).encode())
    assert caught.value.reason is reason
    assert caught.value.index in (0, 1)


def test_export_refuses_repeats_and_mixed_checkpoints(log: TraceLog, clock: FixedClock) -> None:
    lines = _export(log)
    with pytest.raises(TraceError) as caught:
        verify_export([*lines, lines[0]])
    assert caught.value.reason is TraceFailure.REPLAYED
    recorder(log, Held(), clock).record(tool_call())
    later = _export(log)
    with pytest.raises(TraceError, match="different checkpoints"):
        verify_export([lines[0], later[1]])


def test_redacted_values_leave_the_line_verifiable(log: TraceLog) -> None:
    record_id = json.loads(_export(log)[0])["record"]["id"]
    log.redact(record_id, "args")
    value = json.loads(_export(log)[0])
    assert "args" not in value["disclosures"]
    assert "args" in value["record"]["digests"]
    assert verify_bundle(json.dumps(value).encode()).disclosed == ("result",)


def test_prove_one_record(log: TraceLog, offline: None) -> None:
    record_id = json.loads(_export(log)[2])["record"]["id"]
    bundle = prove(log, record_id)
    report = verify_bundle(json.dumps(bundle, indent=2).encode())
    assert (report.index, report.record.kind) == (2, Kind.ESCALATION)


def test_tree_links_escalation_and_resolution(log: TraceLog) -> None:
    roots = trace_tree(log)
    assert [r.record.kind for r in roots] == [Kind.TOOL_INVOCATION, Kind.TOOL_INVOCATION]
    escalation = roots[0].children[0]
    assert escalation.record.kind is Kind.ESCALATION
    assert escalation.children[0].record.kind is Kind.RESOLUTION


# -- OpenTelemetry ----------------------------------------------------------------------------


def test_otel_export_carries_the_attributes(log: TraceLog) -> None:
    exporter = InMemorySpanExporter()
    assert export_otel(log, exporter) == 4
    spans = exporter.get_finished_spans()
    tool = spans[0]
    attributes = dict(tool.attributes or {})
    envelope = log.find(attributes["troth.record.id"]).envelope  # type: ignore[arg-type]
    record = open_envelope(envelope)[0]
    assert tool.name == "execute_tool refund"
    assert attributes["gen_ai.operation.name"] == "execute_tool"
    assert attributes["gen_ai.agent.id"] == str(record.agent)
    assert attributes["gen_ai.tool.name"] == "refund"
    assert attributes["gen_ai.tool.call.id"] == "call_1"
    assert attributes["gen_ai.conversation.id"] == "conv-1"
    assert attributes["troth.record.index"] == 0
    assert attributes["troth.record.hash"] == sha256(open_envelope(envelope)[1]).hex()
    assert attributes["troth.signer"] == str(record.agent)
    assert attributes["troth.decision"] == "allow"
    assert attributes["troth.policy.ids"] == ("refund",)
    escalation, resolution = spans[2], spans[3]
    assert escalation.name == "troth escalation"
    assert resolution.parent is not None
    assert escalation.context is not None
    assert resolution.parent.span_id == escalation.context.span_id


def test_signing_span_processor(tmp_path: Path, clock: FixedClock) -> None:
    """An agent instrumented with GenAI spans gets signed records by adding one processor."""
    log = open_log(tmp_path / "trace.db", clock)
    agent = Held()
    processor = SigningSpanProcessor(recorder(log, agent, clock))
    provider = TracerProvider()
    provider.add_span_processor(processor)
    exported = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    tracer = provider.get_tracer("agent")
    with tracer.start_as_current_span(
        "invoke_agent support",
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.id": "support"},
    ):
        with tracer.start_as_current_span(
            "execute_tool refund",
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "refund",
                "gen_ai.tool.call.id": "call_7",
                "gen_ai.conversation.id": "conv-9",
                "gen_ai.tool.call.arguments": '{"order_id": "o1", "amount": 20}',
                "troth.decision": "allow",
                "troth.policy.ids": ("refund",),
                "troth.bundle.revision": 7,
            },
        ):
            pass
        with tracer.start_as_current_span("chat", attributes={"gen_ai.operation.name": "chat"}):
            pass
    assert (processor.recorded, processor.failures) == (2, 0)
    tool_span, _chat, agent_span = exported.get_finished_spans()
    report = verify_log(log)
    assert report.size == 2
    tool_record = open_envelope(log.find(_id(log, 0)).envelope)[0]
    assert tool_record.kind is Kind.TOOL_INVOCATION
    assert tool_record.tool is not None
    assert tool_record.tool.call == "call_7"
    assert tool_record.decision is not None
    assert tool_record.decision.bundle == "7"
    assert tool_record.links.conversation == "conv-9"
    assert tool_span.context is not None
    assert agent_span.context is not None
    assert tool_record.links.span == f"{tool_span.context.span_id:016x}"
    assert tool_record.links.parent_span == f"{agent_span.context.span_id:016x}"
    assert "args" in log.disclosures(tool_record.id)
    roots = trace_tree(log)
    assert [r.record.kind for r in roots] == [Kind.MESSAGE]
    assert roots[0].children[0].record.id == tool_record.id


def _id(log: TraceLog, index: int) -> str:
    return next(e.record_id for e in log.stored() if e.index == index)


def test_strict_processor_raises_when_a_span_cannot_be_recorded(
    tmp_path: Path, clock: FixedClock
) -> None:
    log = open_log(tmp_path / "trace.db", clock)
    processor = SigningSpanProcessor(recorder(log, Held(), clock))
    provider = TracerProvider()
    provider.add_span_processor(processor)
    # the decision is the instrumentation's own (a model's output is always recorded:
    # tests/test_review30c_otel.py); an outcome that is no record text is refused
    refused = {"gen_ai.operation.name": "execute_tool", "troth.decision": "x" * 300}
    span = provider.get_tracer("agent").start_span("execute_tool x", attributes=refused)
    with pytest.raises(ValueError, match="decision outcome"):
        span.end()
    lenient = SigningSpanProcessor(recorder(log, Held(), clock), strict=False)
    other = TracerProvider()  # a span the processor was handed as it started (review 70j)
    other.add_span_processor(lenient)
    other.get_tracer("agent").start_span("execute_tool x", attributes=refused).end()
    assert lenient.failures == 1


def test_otlp_export_to_a_local_collector(log: TraceLog) -> None:
    received: list[tuple[str, str, bytes]] = []

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"], body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = HTTPServer(("127.0.0.1", 0), Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
        assert export_otel(log, otlp_exporter(endpoint)) == 4
    finally:
        server.shutdown()
    (path, content_type, body) = received[0]
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    assert b"execute_tool refund" in body
    assert b"troth.record.hash" in body
