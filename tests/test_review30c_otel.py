"""Review 30c, the OpenTelemetry span processor (`troth.trace.otel.SigningSpanProcessor`): the
attribute values of an agent framework's GenAI spans are a model's output (a tool result, the
tool name the model asked for, the messages), so an attacker steering the model chooses them.

A span the processor could not record either stopped the agent (strict, the default: the
refusal raised from `span.end()`) or left the call out of the trace (`strict=False`), so a
model's output chose between stopping the agent and hiding its own tool call:

1. a tool result (or argument, or messages) over MAX_TRACE_DISCLOSURE_BYTES, or one a record
   cannot disclose (a noncharacter, a lone surrogate), was disclosed as is: signing refused it;
2. a tool name, call id or conversation id that is no record text (over MAX_TRACE_TEXT
   characters, a control character) was refused by the record;
3. `troth.policy.ids` given as one string was signed as its characters, and as a number raised
   TypeError past `strict=False`;
4. span times out of order (an end before the start: the SDK reads the wall clock, which NTP
   steps back) were refused by the record.

And the tree of `troth trace show`:

5. a record was put under the record of its parent span id, whatever the trace or the agent
   (the last record of a span id winning), so a caller choosing a request's parent context or a
   member signing a span id moved an agent's records under another conversation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from tests.support.traces import NOW, Held, open_log, recorder
from troth import limits
from troth.clock import FixedClock
from troth.trace import Kind, TraceLog
from troth.trace.otel import SigningSpanProcessor
from troth.trace.record import Links, TraceRecord
from troth.trace.signing import RecordContent, open_envelope
from troth.trace.view import trace_tree


def _world(tmp_path: Path) -> tuple[TraceLog, SigningSpanProcessor, Any]:
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    processor = SigningSpanProcessor(recorder(log, Held(), clock))  # strict
    provider = TracerProvider()
    provider.add_span_processor(processor)
    return log, processor, provider.get_tracer("agent")


def _tool_span(tracer: Any, **attributes: Any) -> None:
    values = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "read_file"}
    values.update(attributes)
    with tracer.start_as_current_span("execute_tool read_file", attributes=values):
        pass


def _only(log: TraceLog) -> TraceRecord:
    (entry,) = list(log.stored())
    return open_envelope(entry.envelope)[0]


@pytest.mark.parametrize(
    "result",
    [
        "x" * (limits.MAX_TRACE_DISCLOSURE_BYTES + 1),  # a large file the tool read
        "ok \ufffe",  # a noncharacter
        "ok \ud800",  # a lone surrogate
    ],
    ids=["over-the-limit", "noncharacter", "surrogate"],
)
def test_a_tool_result_a_record_cannot_disclose_is_kept_by_its_hash(
    tmp_path: Path, result: str
) -> None:
    """Otel 1 (was a strict xfail until span_content disclosed values as a gate's recorder
    does: `troth.trace.record.disclosed`, its hash and size past the limit): the span is
    recorded, its result by hash and size."""
    log, processor, tracer = _world(tmp_path)
    _tool_span(tracer, **{"gen_ai.tool.call.result": result})
    assert (processor.recorded, processor.failures) == (1, 0)
    record = _only(log)
    value = json.loads(log.disclosures(record.id)["result"].value)
    if "\ud800" in result:  # a lone surrogate is not JSON text: only its type is kept
        assert value == {"not_json": "str"}
    else:
        assert set(value) == {"sha256", "bytes"}


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("gen_ai.tool.name", "x" * (limits.MAX_TRACE_TEXT + 1)),
        ("gen_ai.tool.name", "read_file\n"),
        ("gen_ai.tool.call.id", "call\x1b[2J"),
        ("gen_ai.conversation.id", "c" * (limits.MAX_TRACE_TEXT + 1)),
    ],
    ids=["long-name", "newline-name", "escape-call-id", "long-conversation"],
)
def test_a_made_up_tool_name_or_id_is_recorded(tmp_path: Path, attribute: str, value: str) -> None:
    """Otel 2 (was a strict xfail until span_content recorded a tool name that is no record
    text as "(not a tool name)", the name in `inputs` as a gate's recorder does, and an id
    that is none by its digest, `sha256:<hex>`): the span is recorded."""
    log, processor, tracer = _world(tmp_path)
    _tool_span(tracer, **{attribute: value})
    assert (processor.recorded, processor.failures) == (1, 0)
    record = _only(log)
    assert record.tool is not None
    if attribute == "gen_ai.tool.name":
        assert record.tool.name == "(not a tool name)"
        assert "inputs" in log.disclosures(record.id)
    elif attribute == "gen_ai.tool.call.id":
        assert record.tool.call is not None
        assert record.tool.call.startswith("sha256:")
    else:
        assert record.links.conversation is not None
        assert record.links.conversation.startswith("sha256:")


def test_policy_ids_of_another_type_are_not_split_or_raised(tmp_path: Path) -> None:
    """Otel 3 (was a strict xfail until span_content read one policy id given as a string, or
    a number, as one id): a string is one policy, not its characters; a number does not raise
    TypeError (which `strict=False` does not count)."""
    log, processor, tracer = _world(tmp_path)
    _tool_span(tracer, **{"troth.decision": "allow", "troth.policy.ids": "refund"})
    _tool_span(tracer, **{"troth.decision": "allow", "troth.policy.ids": 7})
    assert (processor.recorded, processor.failures) == (2, 0)
    decisions = [open_envelope(e.envelope)[0].decision for e in log.stored()]
    assert [d.policies if d else None for d in decisions] == [("refund",), ("7",)]


def test_span_times_out_of_order_are_recorded(tmp_path: Path) -> None:
    """Otel 4 (was a strict xfail until span_content recorded an end before the start as the
    start): a span ended before it started (the wall clock stepped back) is recorded."""
    log, processor, tracer = _world(tmp_path)
    span = tracer.start_span(
        "execute_tool read_file",
        attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "read_file"},
        start_time=NOW * 1_000_000_000,
    )
    span.end(end_time=NOW * 1_000_000_000 - 5_000_000_000)
    assert (processor.recorded, processor.failures) == (1, 0)
    record = _only(log)
    assert record.span is not None
    assert record.span.start_us == record.span.end_us == NOW * 1_000_000


def _invoke_with_tool(tracer: Any, context: Any = None) -> None:
    """An invoke_agent span (under `context`, a remote parent if given) with a tool span."""
    with (
        tracer.start_as_current_span(
            "invoke_agent support",
            context=context,
            attributes={"gen_ai.operation.name": "invoke_agent"},
        ),
        tracer.start_as_current_span(
            "execute_tool lookup",
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup"},
        ),
    ):
        pass


def test_a_parent_span_of_another_trace_or_agent_is_not_taken(tmp_path: Path) -> None:
    """Otel 5: `troth trace show` (trace_tree) linked a record to the record of its parent span
    id whatever its trace and agent, the last record of that span id winning. A caller of an
    instrumented agent picks its request's parent context (a W3C traceparent: another trace,
    the span id of a record it saw), and a member sharing a log signs any span ids: either put
    the agent's records under another conversation's in the tree. Was a strict xfail until
    the tree took a parent span in the child's trace, its agent's record first, and none when
    records of other agents claim it."""
    log, _processor, tracer = _world(tmp_path)
    _invoke_with_tool(tracer)
    first = [open_envelope(e.envelope)[0] for e in log.stored()]
    invoke = next(r for r in first if r.kind is Kind.MESSAGE)
    assert invoke.links.span is not None
    assert invoke.links.trace is not None
    # a request whose traceparent names that record's span id, in a trace of its own
    remote = SpanContext(int("ab" * 16, 16), int(invoke.links.span, 16), True, TraceFlags(1))
    _invoke_with_tool(tracer, set_span_in_context(NonRecordingSpan(remote)))
    # another member signs a record claiming the first invoke_agent's trace and span ids
    other = recorder(log, Held(), FixedClock(NOW))
    other.record(
        RecordContent(Kind.MESSAGE, links=Links(trace=invoke.links.trace, span=invoke.links.span))
    )
    roots = trace_tree(log)
    by_id = {root.record.id: root for root in roots}
    assert invoke.id in by_id  # the first conversation: its tool call alone under it
    assert [child.record.kind for child in by_id[invoke.id].children] == [Kind.TOOL_INVOCATION]
    assert len(roots) == 3  # the remote request's conversation and the other member's: roots
