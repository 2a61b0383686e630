"""Review 53r: attacks tried that the code already refused."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider

from tests.support.traces import NOW, Held, open_log, recorder
from troth.clock import FixedClock
from troth.trace import Kind
from troth.trace.otel import SigningSpanProcessor
from troth.trace.otel_names import TROTH_TOOL_SERVER
from troth.trace.signing import open_envelope


def test_an_agent_span_naming_a_server_names_no_tool(tmp_path: Path) -> None:
    """otel 1: `troth.tool.server` on an invoke_agent span gives its message record no tool
    (a server is a tool's, and a message names none)."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    processor = SigningSpanProcessor(recorder(log, Held(), clock))
    provider = TracerProvider()
    provider.add_span_processor(processor)
    attributes = {"gen_ai.operation.name": "invoke_agent", TROTH_TOOL_SERVER: "payments"}
    tracer = provider.get_tracer("agent")
    with tracer.start_as_current_span("invoke_agent a", attributes=attributes):
        pass
    (entry,) = list(log.stored())
    record = open_envelope(entry.envelope)[0]
    assert record.kind is Kind.MESSAGE
    assert record.tool is None
