"""Review 69q: the OpenTelemetry span processor against spans an agent framework controls.

otel 1: a span attribute holding an integer past Python's int-to-text limit (4300 digits: a
tool returning `math.factorial(2000)` as its `gen_ai.tool.call.result`, an int call id, a
policy id) made `SigningSpanProcessor` refuse the span (`str()` raised ValueError): strict, the
tool call's `span.end()` raised and no record was signed; `strict=False`, the step was lost,
counted only. docs/traces.md promises every span is recorded whatever its values hold; such an
integer is now recorded as its hexadecimal text (`0x...`, linear time; a decimal text of an
attacker's integer is quadratic, which is why Python limits it).

otel 3: `SigningSpanProcessor(strict=False)` lost a span it could not sign (the log refused the
record, the instrumentation's `troth.decision` was no record text) with no word anywhere: only
an integer, `failures`, went up, which no one reads as the agent runs, so a tool call left no
record and no trace of its loss. Each loss is now a warning on the `troth.trace.otel` logger
naming the span (its name, trace and span ids) and why.

otel 2: several agents in one process share one `TracerProvider` (the global one), each with its
own `SigningSpanProcessor`: every processor signed every span, so agent A's key signed agent B's
tool call as A's own step (a record claiming a signer the step did not have), and the same
span was recorded once per agent. A span's `gen_ai.agent.id` cannot choose the signer (the
instrumentation's word: review 57h). Fixed in review 70h, otel 1 (tests/test_review70h_otel.py):
one processor per provider, the host naming the agent acting (`troth.trace.otel.acting`), a
second processor on the provider refused as the first span starts.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

from tests.support.traces import NOW, Held, open_log, recorder
from troth.clock import FixedClock
from troth.trace.log import TraceLog
from troth.trace.otel import SigningSampler, SigningSpanProcessor, acting, span_content
from troth.trace.record import TraceRecord
from troth.trace.signing import open_envelope

TOOL = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "factorial"}
HUGE = 7**6000  # 5,071 decimal digits: past sys.get_int_max_str_digits() (4300)


def _records(log: TraceLog) -> list[TraceRecord]:
    return [open_envelope(entry.envelope)[0] for entry in log.stored()]


def _signed(tmp_path: Path, attributes: dict[str, object]) -> list[TraceRecord]:
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    provider = TracerProvider(sampler=SigningSampler())
    provider.add_span_processor(SigningSpanProcessor(recorder(log, Held(), clock)))
    tracer = provider.get_tracer("agent")
    with tracer.start_as_current_span("execute_tool factorial", attributes=attributes):  # type: ignore[arg-type]
        pass
    return _records(log)


@pytest.mark.parametrize(
    "extra",
    [
        {"gen_ai.tool.call.result": HUGE},
        {"gen_ai.tool.call.arguments": [1, HUGE]},
        {"gen_ai.tool.call.id": HUGE},
        {"troth.decision": "allow", "troth.policy.ids": HUGE},
        {"troth.decision": "allow", "troth.policy.ids": [HUGE, 2]},
        {"troth.decision": "allow", "troth.bundle.revision": HUGE},
    ],
    ids=["result", "arguments", "call-id", "policy-id", "policy-ids", "revision"],
)
def test_otel1_a_span_holding_a_huge_integer_is_recorded(
    tmp_path: Path, extra: dict[str, object]
) -> None:
    (record,) = _signed(tmp_path, {**TOOL, **extra})
    assert record.tool is not None
    assert record.tool.name == "factorial"


def test_otel1_the_huge_integer_is_recorded_as_its_hexadecimal() -> None:
    span = ReadableSpan(name="execute_tool factorial", attributes={**TOOL, "r": HUGE})
    attributes = {**TOOL, "gen_ai.tool.call.result": HUGE, "gen_ai.tool.call.arguments": [1, HUGE]}
    content = span_content(span, attributes, "execute_tool")
    assert content.values["result"] == hex(HUGE)  # linear, and no decimal text is made
    assert content.values["args"] == str((1, hex(HUGE)))


def test_otel2_a_span_of_one_agent_is_signed_by_that_agent_alone(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    alice, bob = Held(), Held()
    log_a = open_log(tmp_path / "a.db", clock)
    log_b = open_log(tmp_path / "b.db", clock)
    provider = TracerProvider(sampler=SigningSampler())
    provider.add_span_processor(SigningSpanProcessor(recorder(log_a, alice, clock)))
    bobs = {**TOOL, "gen_ai.agent.id": str(bob.identity.identifier)}
    with (
        acting(recorder(log_b, bob, clock)),  # the host says whose work it is
        provider.get_tracer("agent").start_as_current_span("execute_tool x", attributes=bobs),
    ):
        pass
    assert _records(log_a) == []  # alice's key signed bob's tool call as her own step
    (record,) = _records(log_b)
    assert record.agent == bob.identity.identifier


def test_otel3_a_span_not_signed_under_strict_false_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    processor = SigningSpanProcessor(recorder(log, Held(), clock), strict=False)
    provider = TracerProvider(sampler=SigningSampler())
    provider.add_span_processor(processor)
    refused = {**TOOL, "troth.decision": "\x00not a record text"}
    with (
        caplog.at_level(logging.WARNING, logger="troth.trace.otel"),
        provider.get_tracer("agent").start_as_current_span(
            "execute_tool factorial", attributes=refused
        ) as span,
    ):
        ids = f"{span.get_span_context().span_id:016x}"
    assert processor.failures == 1
    assert _records(log) == []
    (warned,) = [r for r in caplog.records if r.name == "troth.trace.otel"]
    assert warned.levelno == logging.WARNING
    assert "execute_tool factorial" in warned.getMessage()
    assert ids in warned.getMessage()
    assert "not signed" in warned.getMessage()
