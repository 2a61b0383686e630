"""Review 69q: attacks on the OpenTelemetry span processor and the OTel export that did not work.

Each test is a real attempt that fails if the defence it names breaks: a span forging troth's
own attributes (signer, key, chain digest, record hash, kind) to make its record claim a
signer or a delegation chain it did not have; a span asking to become a delegation, escalation
or revocation record; a span with 10,000 events, 10,000 attributes and binary, non-UTF-8 and
lone-surrogate values; and a token in a record's arguments looked for in the OTLP bytes the
export sends.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util.types import AttributeValue

from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.trace import Kind, TraceLog
from troth.trace.otel import SigningSampler, SigningSpanProcessor, export_otel
from troth.trace.record import TraceRecord
from troth.trace.signing import open_envelope

TOOL: dict[str, AttributeValue] = {
    "gen_ai.operation.name": "execute_tool",
    "gen_ai.tool.name": "refund",
}


def _records(log: TraceLog) -> list[TraceRecord]:
    return [open_envelope(entry.envelope)[0] for entry in log.stored()]


def _signing(tmp_path: Path) -> tuple[TraceLog, Held, TracerProvider]:
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    agent = Held()
    provider = TracerProvider(sampler=SigningSampler())
    provider.add_span_processor(SigningSpanProcessor(recorder(log, agent, clock)))
    return log, agent, provider


def test_a_span_forging_troths_attributes_claims_no_signer_or_chain(tmp_path: Path) -> None:
    """A record's signer, key and authority are the recorder's; troth.* attributes other than
    the decision's are never read (`_READ`), and the export writes the record's own."""
    log, agent, provider = _signing(tmp_path)
    other = Held()
    forged: dict[str, AttributeValue] = {
        "troth.signer": str(other.identifier),
        "troth.signer.key": "forged-key",
        "troth.chain.digest": "ab" * 32,
        "troth.record.hash": "cd" * 32,
        "troth.record.index": 7,
        "troth.record.kind": "delegation",
        "troth.escalation.to": str(other.identifier),
    }
    with provider.get_tracer("app").start_as_current_span(
        "execute_tool refund", attributes=TOOL | forged
    ):
        pass
    (record,) = _records(log)
    assert record.agent == agent.identifier
    assert record.authority is None
    assert record.escalation_to is None
    assert record.kind is Kind.TOOL_INVOCATION
    log.checkpoint()
    exporter = InMemorySpanExporter()
    export_otel(log, exporter)
    (span,) = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert attributes["troth.signer"] == str(agent.identifier)
    assert attributes["troth.signer.key"] == record.key
    assert "troth.chain.digest" not in attributes
    assert attributes["troth.record.kind"] == "tool_invocation"


@pytest.mark.parametrize("operation", ["delegation", "escalation", "revocation", "resolution"])
def test_a_span_asking_for_another_record_kind_is_not_signed(
    tmp_path: Path, operation: str
) -> None:
    """Only execute_tool and invoke_agent spans are signed (as tool_invocation / denial /
    message): no span makes its agent sign a delegation, escalation or resolution."""
    log, _agent, provider = _signing(tmp_path)
    asked = {"gen_ai.operation.name": operation, "troth.record.kind": operation}
    with provider.get_tracer("app").start_as_current_span(f"{operation} x", attributes=asked):
        pass
    assert _records(log) == []


def test_a_span_with_ten_thousand_events_and_attributes_and_odd_bytes_is_recorded(
    tmp_path: Path,
) -> None:
    log, _agent, provider = _signing(tmp_path)
    odd: dict[str, AttributeValue] = {
        "troth.decision": "deny",
        "gen_ai.tool.call.arguments": b"\xff\xfe\x00not utf-8",  # the SDK drops it
        "gen_ai.tool.call.result": "a\ud800b",  # a lone surrogate
        "gen_ai.conversation.id": "\x00" * 10_000,
    }
    with provider.get_tracer("app").start_as_current_span(
        "execute_tool refund", attributes=TOOL | odd
    ) as span:
        for i in range(10_000):
            span.add_event("step", {"i": i})
            span.set_attribute(f"arg.{i}", i)
    (record,) = _records(log)
    assert record.kind is Kind.DENIAL  # the decision given at start holds past the drops
    assert record.links.conversation is not None
    assert record.links.conversation.startswith("sha256:")


def test_a_token_in_a_records_arguments_is_not_in_the_otlp_bytes(tmp_path: Path) -> None:
    """The export carries hashes, ids and names, never a record's redactable values."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    canary = "ghp_CANARYtoken0123456789abcdefABCDEF"
    recorder(log, Held(), clock).record(
        tool_call(args={"token": canary}, result=canary, inputs={"auth": canary})
    )
    log.checkpoint()
    exporter = InMemorySpanExporter()
    assert export_otel(log, exporter) == 1
    sent = encode_spans(exporter.get_finished_spans()).SerializeToString()
    assert canary.encode() not in sent
    assert canary not in json.dumps(
        [dict(s.attributes or {}) for s in exporter.get_finished_spans()]
    )
