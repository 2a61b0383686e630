"""Review 62b, trace collection, exports and their rendering (issue #13).

1. A member resending one batch (a lost answer, or on purpose) is answered `already` each
   time, nothing appended (right), but the service's status counted every resend as
   `appended`: a member replaying one record 10,000 times made `troth node status` say the
   node appended 10,000 records while its log grew by one. Only records appended count as
   `appended`; a resend answered from the log is counted apart (`already`).
2. `troth trace show` draws each record as one line of fields separated by two spaces, and a
   tool name is any printable text a caller chose (a gate records a made-up name as given,
   spaces included): a denied call of a tool named `x  allow by [admin] rev 9  under
   root-authority` drew a node-signed denial whose line reads as a call allowed by a policy,
   under an authority, that the record does not hold. (cli/trace_cmds.py, outside 62b's
   area: strict xfail; the fix is described in the review's report.)
3. The OpenTelemetry export put a record whose parent link names a record that claims an
   OTel span (every record `SigningSpanProcessor` signs does) under a span no record has:
   the parent's span id was derived from the parent record alone, while that record's own
   span id is derived from the span it claims. An escalation an instrumented agent made
   about one of its tool calls was a root in the backend, under a missing parent, where
   `troth trace show` draws it under the call. A parent named by record now is that
   record's span: the span it claims, as a child claiming that span id finds it.
4. `troth trace export --format otel` (`export_otel`) sent the spans of a log whose stored
   records were edited (a denial's payload turned into an allow, its signature left as it
   was) and said `N spans sent`, exit 0, where the JSONL export of the same log refuses it
   (its records do not hash to the log's tree): the backend showed as signed a record no
   signature covers. The OTel export now checks what the JSONL export checks before it sends
   a span: every stored record hashes to a fresh checkpoint of the log (TraceError, naming the
   first that does not, nothing sent).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.gates import T, lookup_order, make_world, refund
from tests.support.traces import NOW, Held, db, open_log, recorder, tool_call
from tests.test_review27t_collect import _batch, _collector
from tests.test_review46a_traces import _member_context, _service
from troth.cli.trace_cmds import _tree_line
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.gates import ListRecorder, Tool, ToolGate
from troth.trace import Decision, Kind, Links, RecordContent, ToolCall
from troth.trace.adapters import decision_content
from troth.trace.export import export_jsonl
from troth.trace.otel import export_otel, record_spans
from troth.trace.record import TraceRecord
from troth.trace.signing import open_envelope
from troth.trace.submit import Receipts, Status
from troth.trace.view import TraceNode


def test_a_replayed_batch_is_not_counted_as_appended(tmp_path: Path) -> None:
    """Traces 1: the same batch of a member sent three times appends one record; the
    service's status says one appended, and two answered from the log."""
    world, log, collector = _collector(tmp_path)
    service = _service(collector)
    context = _member_context(world, log.clock.now())
    content = RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("read"))
    submission = _batch(collector, world.support.signer, content).to_cbor()
    statuses = []
    for _ in range(3):
        answer = asyncio.run(service.submit(submission, context))
        statuses.append(Receipts.from_cbor(answer, expected=1).results[0].status)
    assert statuses == [Status.APPENDED, Status.ALREADY, Status.ALREADY]
    assert log.size() == 1
    assert service.status() == {"appended": 1, "already": 2, "refused": 0}


FORGED = "x  allow by [admin] rev 9  under root-authority"


def denials_signed(tmp_path: Path, *names: str) -> list[TraceRecord]:
    """The records a gate's runner signs of calls of tools `names` (none declared: each
    denied, its name recorded as the caller gave it), read back from its log."""
    world = make_world()
    decisions = ListRecorder()
    point = world.point(world.store(world.bundle()), decisions)
    caller = world.credential(world.support_chain, world.support)
    gate = ToolGate(
        point, [Tool.from_function(f) for f in (lookup_order, refund)], clock=FixedClock(T + 10)
    )
    for name in names:
        assert not gate.invoke(caller, name, {}).allowed
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "log.db", clock)
    runner = Held()
    signing = recorder(log, runner, clock)
    for decision in decisions.records:
        signing.record(decision_content(decision, runner.identifier)[0])
    return [open_envelope(entry.envelope)[0] for entry in log.stored()]


def test_a_tool_name_cannot_forge_the_fields_of_a_shown_line(tmp_path: Path) -> None:
    """Traces 2: a caller asks a gate for a tool of a made-up name; the gate denies it and
    records the name as given. Its `trace show` line must show that name as one field (quoted,
    as JSON text), so that what follows `tool` in it is never read as the record's decision
    or authority. Was a strict xfail until `_tree_line` quoted caller-chosen texts (`_field`)."""
    (record,) = denials_signed(tmp_path, FORGED)
    assert record.kind is Kind.DENIAL
    assert record.authority is None
    assert record.tool is not None
    assert record.tool.name == FORGED
    line = _tree_line(TraceNode(0, record, None), {}, 0, None)
    assert f"tool {json.dumps(FORGED)}" in line, line


@pytest.mark.parametrize("through", ["export_otel", "record_spans"])
def test_a_record_under_a_span_records_child_is_under_its_span(
    tmp_path: Path, through: str
) -> None:
    """Traces 3: record B names record A (which claims an OTel span) as its parent; in the
    export B's parent span is A's span, as `trace show` draws B under A. Was a strict xfail
    until `record_span` took the span the named record claims (`claims`)."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "log.db", clock)
    agent = recorder(log, Held(), clock)
    trace = "ab" * 16
    call = agent.record(
        RecordContent(
            Kind.TOOL_INVOCATION,
            tool=ToolCall("search"),
            links=Links(trace=trace, span="00000000000000aa"),
        )
    )
    agent.escalate(Held().identifier, question="refund?", parent=call.record, trace=trace)
    if through == "export_otel":
        exporter = InMemorySpanExporter()
        assert export_otel(log, exporter) == 2
        spans = list(exporter.get_finished_spans())
    else:
        spans = record_spans([(entry.index, entry.envelope) for entry in log.stored()])
    tool, escalation = spans
    assert tool.parent is None
    assert escalation.parent is not None
    assert escalation.parent.span_id == tool.context.span_id
    assert escalation.context.trace_id == tool.context.trace_id


def _allowed_instead(envelope: bytes) -> bytes:
    """`envelope` with its payload's decision `deny` made `allow`, its signature kept."""
    value = json.loads(envelope)
    payload = base64.b64decode(value["payload"]).replace(b'"outcome":"deny"', b'"outcome":"allow"')
    value["payload"] = base64.b64encode(payload).decode()
    return json.dumps(value, separators=(",", ":")).encode()


def test_the_otel_export_of_an_edited_log_sends_nothing(tmp_path: Path) -> None:
    """Traces 4: a denial edited into an allow in the log's file: the JSONL export refuses
    the log, and so does the OTel export, before any span is sent. Was a strict xfail until
    `export_otel` checked `hashed_checkpoint` first."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "log.db", clock)
    agent = recorder(log, Held(), clock)
    denied = tool_call()
    agent.record(RecordContent(Kind.DENIAL, tool=denied.tool, decision=Decision("deny")))
    agent.record(tool_call())
    raw = db(log)
    (envelope,) = raw.execute("SELECT envelope FROM leaves WHERE idx = 0").fetchone()
    edited = _allowed_instead(bytes(envelope))
    assert edited != bytes(envelope)
    raw.execute("UPDATE leaves SET envelope = ? WHERE idx = 0", (edited,))
    raw.close()
    with pytest.raises(TraceError) as jsonl:
        export_jsonl(log, io.StringIO())
    assert jsonl.value.reason is TraceFailure.ROOT_MISMATCH
    exporter = InMemorySpanExporter()
    with pytest.raises(TraceError) as otel:
        export_otel(log, exporter)
    assert otel.value.reason is TraceFailure.ROOT_MISMATCH
    assert exporter.get_finished_spans() == ()
