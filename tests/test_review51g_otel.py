"""Review 51g, otel 1: the span processor (`SigningSpanProcessor`) signed a span's
`troth.policy.ids` and `troth.bundle.revision` as the record's decision as they came: more than
MAX_TRACE_POLICY_IDS ids, an id over MAX_TRACE_TEXT characters (a policy bundle's author chose
it), or an empty one, made the record refuse the span, which raised from `span.end()` (strict,
the default: the agent stopped) or left the call out of the trace. A gate's own recorder keeps
the ids a record can hold, at most MAX_TRACE_POLICY_IDS of them (`decision_content`); the
processor now does the same, and keeps every id (and a revision that is no record text) in
the record's `inputs`, disclosed by hash and size past MAX_TRACE_DENIED_DISCLOSURE_BYTES, as
it keeps a made-up tool name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from tests.support.traces import NOW, Held, open_log, recorder
from troth import limits
from troth.clock import FixedClock
from troth.trace import TraceLog
from troth.trace.otel import SigningSpanProcessor
from troth.trace.record import TraceRecord
from troth.trace.signing import open_envelope


def _world(tmp_path: Path) -> tuple[TraceLog, SigningSpanProcessor, Any]:
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    processor = SigningSpanProcessor(recorder(log, Held(), clock))  # strict
    provider = TracerProvider()
    provider.add_span_processor(processor)
    return log, processor, provider.get_tracer("agent")


def _span(tracer: Any, **attributes: Any) -> None:
    values = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "refund",
        "troth.decision": "allow",
    }
    values.update(attributes)
    with tracer.start_as_current_span("execute_tool refund", attributes=values):
        pass


def _only(log: TraceLog) -> TraceRecord:
    (entry,) = list(log.stored())
    return open_envelope(entry.envelope)[0]


@pytest.mark.parametrize(
    ("ids", "kept"),
    [
        (["p"] * (limits.MAX_TRACE_POLICY_IDS + 1), ("p",) * limits.MAX_TRACE_POLICY_IDS),
        (["x" * (limits.MAX_TRACE_TEXT + 1), "refund"], ("refund",)),
        (["", "refund", "a\x1bb"], ("refund",)),
    ],
    ids=["too-many", "too-long", "empty-and-control"],
)
def test_policy_ids_a_record_cannot_hold_do_not_refuse_the_span(
    tmp_path: Path, ids: list[str], kept: tuple[str, ...]
) -> None:
    log, processor, tracer = _world(tmp_path)
    _span(tracer, **{"troth.policy.ids": ids})
    assert (processor.recorded, processor.failures) == (1, 0)
    record = _only(log)
    assert record.decision is not None
    assert (record.decision.outcome, record.decision.policies) == ("allow", kept)
    inputs = json.loads(log.disclosures(record.id)["inputs"].value)
    assert inputs["policies"] == ids  # every id, as the span gave them


def test_a_revision_a_record_cannot_hold_does_not_refuse_the_span(tmp_path: Path) -> None:
    log, processor, tracer = _world(tmp_path)
    revision = "r" * (limits.MAX_TRACE_TEXT + 1)
    _span(tracer, **{"troth.bundle.revision": revision, "troth.policy.ids": ["refund"]})
    assert (processor.recorded, processor.failures) == (1, 0)
    record = _only(log)
    assert record.decision is not None
    assert (record.decision.bundle, record.decision.policies) == (None, ("refund",))
    inputs = json.loads(log.disclosures(record.id)["inputs"].value)
    assert inputs == {"bundle": revision}


def test_policy_ids_a_record_holds_are_kept_as_they_were(tmp_path: Path) -> None:
    log, processor, tracer = _world(tmp_path)
    _span(tracer, **{"troth.bundle.revision": "7", "troth.policy.ids": ["refund", "limits"]})
    assert (processor.recorded, processor.failures) == (1, 0)
    record = _only(log)
    assert record.decision is not None
    assert (record.decision.bundle, record.decision.policies) == ("7", ("refund", "limits"))
    assert "inputs" not in log.disclosures(record.id)


def test_an_agent_spans_messages_stay_beside_the_ids_left_out(tmp_path: Path) -> None:
    """An invoke_agent span's `inputs` are its input messages: the ids left out are kept
    beside them (`{"messages": ..., "policies": ...}`), never merged into them."""
    log, processor, tracer = _world(tmp_path)
    ids = ["p"] * (limits.MAX_TRACE_POLICY_IDS + 1)
    attributes = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.input.messages": "hello",
        "troth.decision": "allow",
        "troth.policy.ids": ids,
    }
    with tracer.start_as_current_span("invoke_agent helper", attributes=attributes):
        pass
    assert (processor.recorded, processor.failures) == (1, 0)
    record = _only(log)
    inputs = json.loads(log.disclosures(record.id)["inputs"].value)
    assert inputs == {"messages": "hello", "policies": ids}
