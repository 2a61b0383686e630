"""Review 64q of review 64i's OTel export fixes.

Review 64q, otel 1: review 64i (otel 4) cut span cycles by following each span's parents, as
emitted, at most `MAX_TRACE_OTEL_SPAN_DEPTH` (64) levels up, and emitted a span whose parents
went on past that as a root. A chain deeper than 64 is no cycle, and no rare one: an agent whose
every record names the one before as its parent (a member's, through the trace service; review
38b, view 2) makes one as long as its records. Every 65th span of such a chain was sent as a
root: the parent link its record signs dropped from the export (`trace show` draws the records
past its depth as trees naming the record they are under; the export named none). The export
now finds the top of a span's parents as emitted through pointers that skip the levels already
walked (path compression: each span's parent is set once, so a pointer to an ancestor stays
true), exactly, at any depth, in a few look-ups a span: a span is a root only when its parent's
top is the span itself, a cycle.

Review 64q, otel 2: review 64i (otel 2) kept an endpoint's user information and query out of
the export's result, and `_check_endpoint` promises its key is never said, but an endpoint
whose host Python's URL parser refuses under NFKC normalization (a full-width number sign,
solidus or at typed or pasted in it) failed with the parser's message, which quotes the whole
network location: `troth trace export --format otel --endpoint https://user:KEY@host<U+FF03>x/`
said the key on stderr (exit 3), into the job's log; so did one whose `@host` was left out,
the key read as its port (`http://user:KEY/v1/traces`). The error now says what is wrong
without either.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.cli import run
from tests.support.traces import NOW, Held, open_log, recorder
from tests.test_review57h_cli import _hostile_record
from tests.test_review64i_otel import _roots_reached
from troth.clock import FixedClock
from troth.trace import Kind, Links, RecordContent, ToolCall, TraceLog
from troth.trace.otel import export_otel, record_spans

_DEEP = 80  # past the 64 levels review 64i followed


def _chain(path: Path, links: list[Links]) -> TraceLog:
    clock = FixedClock(NOW)
    log = open_log(path, clock)
    agent = recorder(log, Held(), clock)
    for link in links:
        agent.record(RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("x"), links=link))
    return log


def _span(level: int) -> str:
    return f"{level + 1:016x}"


def test_otel1_a_chain_deeper_than_64_keeps_every_parent(tmp_path: Path) -> None:
    links = [
        Links(trace="a" * 32, span=_span(k), parent_span=None if k == 0 else _span(k - 1))
        for k in range(_DEEP)
    ]
    log = _chain(tmp_path / "trace.db", links)
    exporter = InMemorySpanExporter()
    assert export_otel(log, exporter) == _DEEP
    spans = exporter.get_finished_spans()
    assert [s.parent is None for s in spans] == [True] + [False] * (_DEEP - 1)
    listed = record_spans((e.index, e.envelope) for e in log.stored())
    assert [s.parent is None for s in listed] == [True] + [False] * (_DEEP - 1)
    log.close()


def test_otel1_a_chain_emitted_from_its_leaf_keeps_every_parent(tmp_path: Path) -> None:
    """The records in reverse: each span's parent not emitted yet when it is, the last one a
    root, its top found through the pointers of the spans emitted before."""
    links = [
        Links(trace="a" * 32, span=_span(k), parent_span=None if k == 0 else _span(k - 1))
        for k in reversed(range(_DEEP))
    ]
    log = _chain(tmp_path / "trace.db", links)
    exporter = InMemorySpanExporter()
    export_otel(log, exporter)
    spans = exporter.get_finished_spans()
    assert [s.parent is None for s in spans] == [False] * (_DEEP - 1) + [True]
    assert _roots_reached(spans)
    log.close()


def test_otel1_a_cycle_deeper_than_64_is_still_cut_once(tmp_path: Path) -> None:
    """Span k under span k+1, the last under the first: one root, where the cycle closes."""
    links = [
        Links(trace="a" * 32, span=_span(k), parent_span=_span((k + 1) % _DEEP))
        for k in range(_DEEP)
    ]
    log = _chain(tmp_path / "trace.db", links)
    exporter = InMemorySpanExporter()
    export_otel(log, exporter)
    spans = exporter.get_finished_spans()
    assert [s.parent is None for s in spans] == [False] * (_DEEP - 1) + [True]
    assert _roots_reached(spans)
    log.close()


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://agent:S3CRET@collector\uff03x:4318/v1/traces",
        "http://S3CRET@collector\uff0fv1:4318/v1/traces",
        "http://agent:S3CRET@coll\uff20ector/v1/traces",
        "http://agent:S3CRET/v1/traces",  # no @host: the key read as its port
    ],
)
def test_otel2_an_endpoint_refused_never_says_its_user_information(
    troth_home: Path, endpoint: str
) -> None:
    _hostile_record(troth_home)
    said = run("trace", "export", "--format", "otel", "--endpoint", endpoint, code=3)
    assert "S3CRET" not in said.stderr + said.stdout
    assert "OTLP endpoint" in said.stderr
