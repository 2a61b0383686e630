"""Review 57h: the OpenTelemetry span processor (`SigningSpanProcessor`).

otel 1: the processor signs a span when it ends, and the SDK ends (and hands to processors)
only the spans its sampler records. Under the SDK's default sampler (`ParentBased(ALWAYS_ON)`)
a tool call under a remote parent whose W3C `traceparent` says "not sampled" (flags `00`: any
caller of an instrumented agent chooses it), or under any ratio sampler an operator sets,
is no span at all to a processor: the tool ran and no record was signed, and nothing said so.
`SigningSampler` wraps the app's sampler and keeps every GenAI span (execute_tool,
invoke_agent) recording (RECORD_ONLY: its sampled flag, and so what exporters send and the
trace context downstream, stay the wrapped sampler's).

otel 2: an invoke_agent span's `inputs` are its input messages (a model's output, disclosed
in clear up to MAX_TRACE_DISCLOSURE_BYTES) and what of its decision a record cannot hold (a
revision that is no record text, ids past MAX_TRACE_POLICY_IDS: review 51g) together: with
messages near the limit the two were over it, the record refused the span, `span.end()`
raised (strict) or the call was left out of the trace, though every span can be recorded
(docs/traces.md). The messages are disclosed within the room the rest leaves.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tests.support.traces import NOW, Held, open_log, recorder
from troth import limits
from troth.clock import FixedClock
from troth.crypto import sha256
from troth.identity import Identifier
from troth.trace import TraceLog, otel
from troth.trace.otel import SigningSampler, SigningSpanProcessor
from troth.trace.record import Kind, Links, TraceRecord, disclosure_value
from troth.trace.record_decode import Holding
from troth.trace.signing import RecordContent, open_envelope, sign_record
from troth.trace.verify import verify_log

UNSAMPLED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
TOOL = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "refund"}


def _records(log: TraceLog) -> list[TraceRecord]:
    return [open_envelope(entry.envelope)[0] for entry in log.stored()]


def _signing(tmp_path: Path, sampler: Sampler | None) -> tuple[TraceLog, SigningSpanProcessor, Any]:
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    processor = SigningSpanProcessor(recorder(log, Held(), clock))  # strict
    provider = TracerProvider() if sampler is None else TracerProvider(sampler=sampler)
    provider.add_span_processor(processor)
    return log, processor, provider.get_tracer("agent")


def _signing_sampler(inner: Sampler | None = None) -> Sampler:
    """The sampler the docs set a signing agent's provider up with."""
    return SigningSampler() if inner is None else SigningSampler(inner)


def test_otel1_a_tool_call_under_an_unsampled_remote_parent_is_signed(tmp_path: Path) -> None:
    log, processor, tracer = _signing(tmp_path, _signing_sampler())
    remote = TraceContextTextMapPropagator().extract({"traceparent": UNSAMPLED})
    with tracer.start_as_current_span("execute_tool refund", context=remote, attributes=TOOL) as s:
        assert not s.get_span_context().trace_flags.sampled  # the caller's choice stands
    assert processor.recorded == 1
    (record,) = _records(log)
    assert record.tool is not None
    assert record.tool.name == "refund"
    assert record.links.parent_span == "b7ad6b7169203331"


@pytest.mark.parametrize("inner", [ALWAYS_OFF, TraceIdRatioBased(0.0), ParentBased(ALWAYS_OFF)])
def test_otel1_a_sampler_that_drops_spans_drops_no_record(tmp_path: Path, inner: Sampler) -> None:
    log, processor, tracer = _signing(tmp_path, _signing_sampler(inner))
    with (
        tracer.start_as_current_span("execute_tool refund", attributes=TOOL),
        tracer.start_as_current_span("chat model") as chat,  # not GenAI-signed: dropped
    ):
        assert not chat.is_recording()
    with tracer.start_as_current_span("invoke_agent support") as agent:  # named late
        agent.set_attribute("gen_ai.operation.name", "invoke_agent")
    assert processor.recorded == 2
    assert [r.kind.value for r in _records(log)] == ["tool_invocation", "message"]
    log.checkpoint()
    assert verify_log(log).size == 2


def test_otel1_the_sampler_passes_sampled_spans_as_its_inner_one_decides(tmp_path: Path) -> None:
    _log, processor, tracer = _signing(tmp_path, _signing_sampler())
    with tracer.start_as_current_span("execute_tool refund", attributes=TOOL) as tool:
        assert tool.get_span_context().trace_flags.sampled
    assert processor.recorded == 1
    assert "SigningSampler" in _signing_sampler().get_description()


def _at_limit_messages() -> str:
    """Input messages whose disclosure is MAX_TRACE_DISCLOSURE_BYTES exactly."""
    text = "m" * (limits.MAX_TRACE_DISCLOSURE_BYTES - 2)
    assert len(disclosure_value(text)) == limits.MAX_TRACE_DISCLOSURE_BYTES
    return text


@pytest.mark.parametrize(
    ("noted", "key"),
    [
        ({"troth.bundle.revision": "r\n1"}, "bundle"),
        ({"troth.policy.ids": ["p"] * (limits.MAX_TRACE_POLICY_IDS + 1)}, "policies"),
    ],
)
def test_otel2_an_agent_span_at_the_limit_with_a_noted_decision_is_signed(
    tmp_path: Path, noted: dict[str, Any], key: str
) -> None:
    log, processor, tracer = _signing(tmp_path, None)
    attributes = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.input.messages": _at_limit_messages(),
        "troth.decision": "allow",
        **noted,
    }
    with tracer.start_as_current_span("invoke_agent support", attributes=attributes):
        pass  # strict: a refused record raised here
    assert (processor.recorded, processor.failures) == (1, 0)
    (entry,) = list(log.stored())
    inputs = entry.disclosures()["inputs"].value
    assert len(inputs) <= limits.MAX_TRACE_DISCLOSURE_BYTES
    value = json.loads(inputs)
    assert set(value) == {"messages", key}  # the decision's notes in clear beside them
    assert value["messages"] == {
        "sha256": sha256(disclosure_value(_at_limit_messages())).hex(),
        "bytes": limits.MAX_TRACE_DISCLOSURE_BYTES,
    }


def test_otel2_messages_with_room_beside_the_notes_stay_in_clear(tmp_path: Path) -> None:
    log, _processor, tracer = _signing(tmp_path, None)
    attributes = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.input.messages": "hello",
        "troth.decision": "allow",
        "troth.bundle.revision": "r\n1",
    }
    with tracer.start_as_current_span("invoke_agent support", attributes=attributes):
        pass
    (entry,) = list(log.stored())
    assert json.loads(entry.disclosures()["inputs"].value) == {
        "messages": "hello",
        "bundle": "r\n1",
    }


# otel 3: the SDK keeps at most 128 attributes a span (OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT) and
# drops the OLDEST to make room for a new one: an instrumentation that sets one attribute per
# tool argument (the model chooses how many) evicts the GenAI attributes given at start, so the
# processor, reading the span's attributes when it ends, signed no record of the call
# (`gen_ai.operation.name` gone) or an allowed invocation of a denied one (`troth.decision`
# gone). What the processor reads is kept as the span started (`on_start`), the later values
# over it.

FLOOD = 128  # the SDK's default span attribute count limit


def _flooded(span: Any) -> None:
    for n in range(FLOOD):
        span.set_attribute(f"app.tool.arg.k{n}", n)


def test_otel3_a_span_whose_operation_was_evicted_is_still_signed(tmp_path: Path) -> None:
    log, processor, tracer = _signing(tmp_path, _signing_sampler())
    started = {**TOOL, "troth.decision": "deny"}
    with tracer.start_as_current_span("execute_tool refund", attributes=started) as span:
        _flooded(span)
        assert "gen_ai.operation.name" not in span.attributes  # the SDK evicted it
    assert (processor.recorded, processor.failures) == (1, 0)
    (record,) = _records(log)
    assert record.kind is Kind.DENIAL
    assert record.tool is not None
    assert record.tool.name == "refund"


def test_otel3_a_denial_whose_decision_was_evicted_is_still_a_denial(tmp_path: Path) -> None:
    log, processor, tracer = _signing(tmp_path, _signing_sampler())
    with tracer.start_as_current_span(
        "execute_tool refund", attributes={"troth.decision": "deny", "troth.policy.ids": "p1"}
    ) as span:
        _flooded(span)
        span.set_attributes(TOOL)  # the operation named last, as some instrumentations do
    assert processor.recorded == 1
    (record,) = _records(log)
    assert record.kind is Kind.DENIAL
    assert record.decision is not None
    assert (record.decision.outcome, record.decision.policies) == ("deny", ("p1",))
    (entry,) = list(log.stored())  # the record says the span lost attributes
    assert json.loads(entry.disclosures()["inputs"].value) == {"dropped_attributes": 4}


def test_otel3_a_value_set_later_is_the_one_signed(tmp_path: Path) -> None:
    log, _processor, tracer = _signing(tmp_path, _signing_sampler())
    with tracer.start_as_current_span("execute_tool refund", attributes=TOOL) as span:
        span.set_attribute("gen_ai.tool.name", "refund_v2")
    (record,) = _records(log)
    assert record.tool is not None
    assert record.tool.name == "refund_v2"


def test_otel3_a_span_never_ended_is_not_kept(tmp_path: Path) -> None:
    _log, processor, tracer = _signing(tmp_path, _signing_sampler())
    spans = [tracer.start_span("execute_tool refund", attributes=TOOL) for _ in range(3)]
    assert len(processor._started) == 3
    del spans
    gc.collect()
    assert processor._started == {}


# otel 4: the OTel export reads the records under an id once per id for the version 1 links
# (`_LogHolders`, review 36g) and kept every id's for the whole export: a log whose version 1
# records (a member may sign one: decoders read it) each link another id grew the export's
# memory by ~200 bytes a record (measured: 16,000 such records 2.3 MB over 16,000 of version 2,
# flat), without bound, as the span ids did (review 55e, otel 1). It keeps at most
# MAX_TRACE_OTEL_HELD_IDS ids, the oldest dropped (read again if named again).


def _v1_linking(log: TraceLog, held: Held, count: int) -> None:
    from tests.test_review36e_trace import _as_v1

    prev = None
    for n in range(count):
        content = RecordContent(Kind.TOOL_INVOCATION, links=Links(f"{n + 1:032x}"))
        signed = _as_v1(held, sign_record(held.signer(NOW), content, seq=n, prev=prev, time=NOW))
        log.append(signed)
        prev = signed.hash


def test_otel4_the_export_keeps_a_bounded_number_of_linked_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_TRACE_OTEL_HELD_IDS", 4)
    log = open_log(tmp_path / "trace.db", FixedClock(NOW))
    _v1_linking(log, Held(), 12)
    sizes: list[int] = []
    holders = otel._LogHolders

    class Counted(holders):  # type: ignore[misc,valid-type]
        def __call__(self, signer: Identifier, record_id: str) -> Holding:
            found: Holding = super().__call__(signer, record_id)
            sizes.append(len(self._placed))
            return found

    monkeypatch.setattr(otel, "_LogHolders", Counted)
    exporter = InMemorySpanExporter()
    assert otel.export_otel(log, exporter) == 12
    assert len(sizes) == 12
    assert max(sizes) <= 4


def test_otel4_links_to_ids_dropped_and_read_again_resolve_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three records, then eight version 1 links cycling among their ids, two ids kept: each
    link's span is under the span of the record it names."""
    from tests.test_review36e_trace import _as_v1

    monkeypatch.setattr(limits, "MAX_TRACE_OTEL_HELD_IDS", 2)
    log = open_log(tmp_path / "trace.db", FixedClock(NOW))
    held, prev = Held(), None
    ids: list[str] = []
    for n in range(11):
        links = Links() if n < 3 else Links(ids[n % 3])
        content = RecordContent(Kind.TOOL_INVOCATION, links=links)
        signed = _as_v1(held, sign_record(held.signer(NOW), content, seq=n, prev=prev, time=NOW))
        log.append(signed)
        prev = signed.hash
        ids.append(signed.record.id)
    exporter = InMemorySpanExporter()
    assert otel.export_otel(log, exporter) == 11
    spans = exporter.get_finished_spans()
    for n in range(3, 11):
        parent = spans[n].parent
        assert parent is not None
        assert parent.span_id == spans[n % 3].context.span_id


def test_otel1_the_sampler_takes_an_operation_of_any_attribute_type(tmp_path: Path) -> None:
    _log, processor, tracer = _signing(tmp_path, _signing_sampler(ALWAYS_OFF))
    with tracer.start_as_current_span(
        "execute_tool refund", attributes={"gen_ai.operation.name": ["execute_tool"]}
    ) as span:
        assert not span.is_recording()  # a list is no operation the processor signs
    assert processor.recorded == 0
