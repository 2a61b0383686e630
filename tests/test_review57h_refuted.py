"""Review 57h: attacks on trace exports and the OpenTelemetry integration that did not work.

Each test is a real attempt that fails if the defence it pins breaks: a span claiming another
agent's id, a span ended twice, spans ended from many threads, hostile span attributes reaching
the OTLP encoder, an edited JSONL export (a line repeated, a line of another log, a line against
another checkpoint of the log, a truncated last line, an endless line), and a redacted value
looked for in the exports and among the commitments of equal values.
"""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.traces import NOW, Held, db, open_log, recorder, tool_call
from troth import limits
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.node.trace_checks import _lines  # the CLI's library call (review 60g)
from troth.trace import TraceLog
from troth.trace.export import export_jsonl, prove, verify_bundle, verify_export
from troth.trace.otel import SigningSampler, SigningSpanProcessor, export_otel
from troth.trace.record import TraceRecord
from troth.trace.signing import open_envelope
from troth.trace.verify import verify_log

TOOL = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "refund"}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


def _records(log: TraceLog) -> list[TraceRecord]:
    return [open_envelope(entry.envelope)[0] for entry in log.stored()]


def _tracer(log: TraceLog, agent: Held, clock: FixedClock) -> tuple[SigningSpanProcessor, Any]:
    processor = SigningSpanProcessor(recorder(log, agent, clock))
    provider = TracerProvider(sampler=SigningSampler())
    provider.add_span_processor(processor)
    return processor, provider.get_tracer("agent")


# -- the span processor ------------------------------------------------------------------------


def test_a_span_claiming_another_agents_id_is_signed_as_its_own(
    tmp_path: Path, clock: FixedClock
) -> None:
    """gen_ai.agent.id is the instrumentation's word: the recorder's key signs, as itself."""
    log = open_log(tmp_path / "trace.db", clock)
    me, victim = Held(), Held()
    _processor, tracer = _tracer(log, me, clock)
    claimed = {"gen_ai.agent.id": str(victim.identifier), "gen_ai.agent.name": "victim"}
    with tracer.start_as_current_span("execute_tool refund", attributes=TOOL | claimed):
        pass
    (record,) = _records(log)
    assert record.agent == me.identifier
    log.checkpoint()
    assert verify_log(log).size == 1
    exporter = InMemorySpanExporter()
    export_otel(log, exporter)
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["gen_ai.agent.id"] == str(me.identifier)
    assert str(victim.identifier) not in json.dumps(dict(span.attributes))


def test_a_span_ended_twice_is_one_record(tmp_path: Path, clock: FixedClock) -> None:
    log = open_log(tmp_path / "trace.db", clock)
    processor, tracer = _tracer(log, Held(), clock)
    span = tracer.start_span("execute_tool refund", attributes=TOOL)
    span.end()
    span.end()  # the SDK warns and hands no processor the span again
    assert processor.recorded == 1
    assert len(_records(log)) == 1


def test_spans_ended_on_many_threads_make_one_chain(tmp_path: Path, clock: FixedClock) -> None:
    log = open_log(tmp_path / "trace.db", clock)
    processor, tracer = _tracer(log, Held(), clock)
    start = threading.Barrier(4)

    def calls() -> None:
        start.wait()
        for _ in range(5):
            with tracer.start_as_current_span("execute_tool refund", attributes=TOOL):
                pass

    threads = [threading.Thread(target=calls) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (processor.recorded, processor.failures) == (20, 0)
    assert sorted(r.seq for r in _records(log)) == list(range(20))
    log.checkpoint()
    assert verify_log(log).size == 20


def test_hostile_span_attributes_reach_the_otlp_encoder_as_signed_text(
    tmp_path: Path, clock: FixedClock
) -> None:
    """Non-string values, a made-up tool name, ids that are no record text, a value past the
    disclosure limit: signed, and the export's spans encode as OTLP."""
    log = open_log(tmp_path / "trace.db", clock)
    processor, tracer = _tracer(log, Held(), clock)
    hostile: dict[str, Any] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "a\x1b[2Jb" * 100,
        "gen_ai.tool.call.id": 7,
        "gen_ai.conversation.id": "\n" * 300,
        "gen_ai.tool.call.arguments": "x" * (limits.MAX_TRACE_DISCLOSURE_BYTES + 1),
        "gen_ai.tool.call.result": [1.5, 2.5],
        "troth.decision": "allow",
        "troth.policy.ids": [True, 3],
        "troth.tool.server": "evil server\x00",
    }
    with tracer.start_as_current_span("execute_tool whatever", attributes=hostile):
        pass
    assert (processor.recorded, processor.failures) == (1, 0)
    log.checkpoint()
    assert verify_log(log).size == 1
    exporter = InMemorySpanExporter()
    assert export_otel(log, exporter) == 1
    spans = exporter.get_finished_spans()
    assert encode_spans(spans).SerializeToString()
    attributes = dict(spans[0].attributes or {})
    assert attributes["gen_ai.tool.name"] == "(not a tool name)"
    assert attributes["troth.tool.server"] == "(not a server name)"
    assert str(attributes["gen_ai.conversation.id"]).startswith("sha256:")
    assert all(str(v).isprintable() for v in attributes.values())


# -- JSONL exports and proof bundles -----------------------------------------------------------


def _export(log: TraceLog) -> list[bytes]:
    out = io.StringIO()
    export_jsonl(log, out)
    return [line.encode() for line in out.getvalue().splitlines()]


def _log(path: Path, clock: FixedClock, records: int) -> TraceLog:
    log = open_log(path, clock)
    agent = recorder(log, Held(), clock)
    for n in range(records):
        agent.record(tool_call(args={"n": n}))
    return log


def test_an_export_with_a_line_repeated_is_refused(tmp_path: Path, clock: FixedClock) -> None:
    lines = _export(_log(tmp_path / "trace.db", clock, 3))
    with pytest.raises(TraceError) as caught:
        verify_export([*lines, lines[1]])
    assert caught.value.reason is TraceFailure.REPLAYED


def test_an_export_with_a_line_of_another_log_is_refused(tmp_path: Path, clock: FixedClock) -> None:
    ours = _export(_log(tmp_path / "a.db", clock, 3))
    theirs = _export(_log(tmp_path / "b.db", clock, 4))
    with pytest.raises(TraceError) as caught:
        verify_export([*ours[:2], theirs[3]])
    assert "different checkpoints" in str(caught.value)


def test_a_line_against_another_checkpoint_of_its_log_is_refused(
    tmp_path: Path, clock: FixedClock
) -> None:
    """The line's proof is for the export's size: the log's older, validly signed checkpoint
    of fewer records put in its place (a proof for another size) does not verify."""
    log = _log(tmp_path / "trace.db", clock, 3)
    older = log.checkpoint().note.decode()
    agent = recorder(log, Held(), clock)
    for _ in range(2):
        agent.record(tool_call())
    line = json.loads(_export(log)[1])
    assert line["checkpoint"] != older
    line["checkpoint"] = older
    with pytest.raises(TraceError) as caught:
        verify_bundle(json.dumps(line).encode())
    assert caught.value.reason is TraceFailure.PROOF_INVALID
    assert caught.value.index == 1


def test_an_export_whose_last_line_is_cut_is_refused_at_that_line(
    tmp_path: Path, clock: FixedClock
) -> None:
    lines = _export(_log(tmp_path / "trace.db", clock, 3))
    with pytest.raises(TraceError) as caught:
        verify_export([*lines[:2], lines[2][: len(lines[2]) // 2]])
    assert "line 3" in str(caught.value)


class _Endless(io.RawIOBase):
    """A stream of one line that never ends (a 1 GB line, /dev/zero): counts what is read."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        view[:] = b"a" * len(view)
        self.read_bytes += len(view)
        return len(view)


def test_an_endless_line_is_read_only_to_the_line_bound() -> None:
    stream = _Endless()
    with pytest.raises(OSError, match="line 1 is longer"):
        next(_lines(io.BufferedReader(stream), "export.jsonl"))
    assert stream.read_bytes <= 2 * limits.MAX_TRACE_LINE_BYTES


# -- redaction ---------------------------------------------------------------------------------


def test_a_redacted_value_is_in_no_export_nor_found_by_its_equals(
    tmp_path: Path, clock: FixedClock
) -> None:
    """Two records of one low-entropy value ("yes"): one redacted. Its JSONL line, its proof
    bundle and its OTel span hold no trace of it, and the commitments of the two differ (salted:
    the one kept in clear does not show what the redacted one committed to)."""
    log = open_log(tmp_path / "trace.db", clock)
    agent = recorder(log, Held(), clock)
    secret = "yes-4711"
    first = agent.record(tool_call(reasoning=secret))
    agent.record(tool_call(reasoning=secret))
    assert log.redact(first.record, "reasoning")
    lines = _export(log)
    assert secret.encode() not in lines[0]
    assert secret.encode() in lines[1]
    assert verify_export(lines).records == 2
    assert secret not in json.dumps(prove(log, first.record))
    exporter = InMemorySpanExporter()
    export_otel(log, exporter)
    assert all(
        secret not in json.dumps(dict(s.attributes or {})) for s in exporter.get_finished_spans()
    )
    one, two = _records(log)
    assert one.digests["reasoning"] != two.digests["reasoning"]


def test_no_record_waits_for_a_flush_and_shutdown_loses_none(
    tmp_path: Path, clock: FixedClock
) -> None:
    """Each span's record is durable when `span.end()` returns (another reader of the file
    sees it before any flush), and a span another thread ends after the provider shut down is
    still signed: nothing is queued to lose."""
    log = open_log(tmp_path / "trace.db", clock)
    processor = SigningSpanProcessor(recorder(log, Held(), clock))
    provider = TracerProvider(sampler=SigningSampler())
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("agent")
    with tracer.start_as_current_span("execute_tool refund", attributes=TOOL):
        pass
    reader = db(log)  # another connection to the file

    def stored() -> int:
        return int(reader.execute("SELECT count(*) FROM leaves").fetchone()[0])

    assert stored() == 1
    late = tracer.start_span("execute_tool refund", attributes=TOOL)
    provider.shutdown()
    ended = threading.Thread(target=late.end)
    ended.start()
    ended.join()
    assert processor.recorded == 2
    assert stored() == 2
    assert processor.force_flush()
    reader.close()


@pytest.mark.parametrize(
    ("name", "value"),
    [("inputs", "made up"), ("reasoning", "x"), ("args", {"n": 1}), ("extra", 1)],
)
def test_a_line_disclosing_what_its_record_does_not_commit_to_is_refused(
    tmp_path: Path, clock: FixedClock, name: str, value: Any
) -> None:
    """Fields the record has no commitment to (a value made up for them, under a real salt),
    another value under a kept field's salt: each refused at its record."""
    line = json.loads(_export(_log(tmp_path / "trace.db", clock, 1))[0])
    salt = line["disclosures"]["args"]["salt"]
    line["disclosures"][name] = {"salt": salt, "value": value}
    with pytest.raises(TraceError) as caught:
        verify_bundle(json.dumps(line).encode())
    assert caught.value.reason is TraceFailure.DISCLOSURE_MISMATCH
    assert caught.value.index == 0
