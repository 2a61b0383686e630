"""Review 66j: the OpenTelemetry span processor's place among a provider's processors.

otel 1: the OTel SDK hands an ended span to a provider's processors in the order they were
added and stops at the first that raises (`SynchronousMultiSpanProcessor.on_end`), so an app's
processor added before `SigningSpanProcessor` that raised left the tool call unsigned (no record,
though the tool ran), and one exporting synchronously (`SimpleSpanProcessor`) held the signing
until its collector answered. docs/traces.md showed the processor added with no word of its
place: it now says to add it before any other (so does its docstring); added first, the record
is signed and durable before any exporter or app processor runs, whatever they do after.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

from tests.support.traces import NOW, Held, open_log, recorder
from troth.clock import FixedClock
from troth.trace.otel import SigningSampler, SigningSpanProcessor

TRACES_DOC = Path(__file__).resolve().parent.parent / "docs" / "traces.md"
TOOL = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "refund"}


class Failing(SpanProcessor):
    """An app's processor (an exporter's) that fails as the span ends."""

    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("the collector is down")


def _end_a_tool_span(tmp_path: Path, *, signing_first: bool) -> int:
    """How many records a tool span left in the log, a failing processor beside the signer."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    signing = SigningSpanProcessor(recorder(log, Held(), clock))
    provider = TracerProvider(sampler=SigningSampler())
    for processor in (signing, Failing()) if signing_first else (Failing(), signing):
        provider.add_span_processor(processor)
    with (
        pytest.raises(RuntimeError, match="collector is down"),
        provider.get_tracer("agent").start_as_current_span("execute_tool refund", attributes=TOOL),
    ):
        pass
    return len(list(log.stored()))


def test_otel1_added_first_the_signer_records_whatever_a_later_processor_does(
    tmp_path: Path,
) -> None:
    assert _end_a_tool_span(tmp_path, signing_first=True) == 1


def test_otel1_added_after_a_failing_processor_no_record_is_signed(tmp_path: Path) -> None:
    assert _end_a_tool_span(tmp_path, signing_first=False) == 0  # why the order is documented


def test_otel1_the_docs_say_to_add_the_signer_before_any_other_processor() -> None:
    text = " ".join(TRACES_DOC.read_text().split())
    assert "add_span_processor(SigningSpanProcessor(agent))`, before any other processor" in text
