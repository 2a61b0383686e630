"""Review 62k: this session's trace fixes (62a, 62b and the lead's), reviewed.

1. Traces 3 (62b) missed a renamed span: two records of one agent claiming one OTel span id
   (a retried call, or a signer reusing an id) are exported as two spans, the second renamed
   to an id derived from the record (review 53r, otel 2). A record whose parent link names
   that second record was put under the span its parent *claims*, which is the first
   record's span: the backend drew it under another record than its parent, where `trace
   show` draws it under its own. A parent named by record is now that record's own span:
   the span it claims only when it is the first of its agent's records to claim that id.
2. Traces 2 (the lead's `_field`): `trace show` writes `-` for a decision that names no
   policy bundle revision (`rev -`) and no policies (`by [-]`), and `-` is plain, so a
   record naming the revision `-` (or the policy `-`) was drawn as one naming none. A text
   `-` is quoted like any other text that could be read as the line's own notation.
3. Traces 3 (62b) made a record naming itself as its parent (its signer chooses its id) and
   claiming a span its own parent span in the OTel export (the parent's claim is its own);
   one claiming no span, or claiming its own span as its parent span, was already (review
   53r). `trace show` draws such a record as a root (`trace_tree`: `parent is node`); a
   backend walking parents from such a span never reaches a root. A span is never its own
   parent now: such a record's span is a root, as `trace show` draws it.
4. Traces 4 (62b) checked that the stored records hash to a fresh checkpoint of the log
   before the OTel export sends a span; that catches an envelope edited alone, but the log's
   file also holds each record's leaf hash, and the fresh checkpoint is computed from what is
   stored: an edit of the envelope (a denial's payload made an allow, its signature kept)
   with its `leaf` column set to the edited envelope's leaf hash, in a log without a
   checkpoint at that size (or with that row deleted too), was sent, `N spans sent`, exit 0,
   while `troth trace verify` refuses it (bad signature) and a JSONL export of it fails any
   verifier. The OTel export now verifies each record (`LogVerifier`: its signature, key and
   chain, over the log's own histories) before it builds its span, on the bytes it sends.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.traces import NOW, Held, db, open_log, recorder, tool_call
from troth.cli.trace_cmds import _tree_line
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import Decision, Kind, Links, RecordContent, ToolCall, TraceLog
from troth.trace.merkle import leaf_hash
from troth.trace.otel import export_otel, record_spans
from troth.trace.signing import open_envelope
from troth.trace.view import TraceNode

SPAN = "00000000000000aa"
TRACE = "ab" * 16


@pytest.mark.parametrize("through", ["export_otel", "record_spans", "child first"])
def test_a_child_of_a_renamed_span_is_under_its_own_parent(tmp_path: Path, through: str) -> None:
    """Traces 1: records A and B of one agent both claim span SPAN (B's span is renamed);
    record C names B as its parent: C's parent span is B's span, not A's (also when
    `record_spans` is given C first). Was a strict xfail until `record_span` took a renamed
    parent's span (`_parent_claim`, `_claims_of`)."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "log.db", clock)
    agent = recorder(log, Held(), clock)
    for _ in range(2):
        agent.record(
            RecordContent(
                Kind.TOOL_INVOCATION, tool=ToolCall("search"), links=Links(trace=TRACE, span=SPAN)
            )
        )
    second = open_envelope(next(e for e in log.stored() if e.index == 1).envelope)[0]
    agent.record(
        RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("read"), links=Links(parent=second.id))
    )
    if through == "export_otel":
        exporter = InMemorySpanExporter()
        assert export_otel(log, exporter) == 3
        spans = list(exporter.get_finished_spans())
    else:
        given = [(entry.index, entry.envelope) for entry in log.stored()]
        if through == "child first":
            given = given[2:] + given[:2]
        spans = record_spans(given)
        if through == "child first":
            spans = spans[1:] + spans[:1]
    first_span, second_span, child = spans
    assert (second_span.attributes or {}).get("troth.span.renamed") is True
    assert first_span.context.span_id != second_span.context.span_id
    assert child.parent is not None
    assert child.parent.span_id == second_span.context.span_id


@pytest.mark.parametrize("where", ["bundle", "policy"])
def test_a_text_dash_is_not_drawn_as_none(tmp_path: Path, where: str) -> None:
    """Traces 2: a decision naming revision `-` (or policy `-`) is not drawn as one naming
    none. Was a strict xfail until `_field` quoted `-`."""
    clock = FixedClock(NOW)
    named = Decision("allow", "-", ()) if where == "bundle" else Decision("allow", None, ("-",))
    none = Decision("allow")
    lines = []
    for number, decision in enumerate((named, none)):
        log = open_log(tmp_path / f"{number}.db", clock)
        recorder(log, Held(), clock).record(
            RecordContent(Kind.DECISION, tool=ToolCall("read"), decision=decision)
        )
        record = open_envelope(next(iter(log.stored())).envelope)[0]
        lines.append(_tree_line(TraceNode(0, record, None), {record.agent: "bob"}, 0, None))
    assert lines[0] != lines[1], lines
    assert json.dumps("-") in lines[0]


@pytest.mark.parametrize("link", ["parent", "parent claiming a span", "parent_span"])
def test_a_record_naming_itself_is_no_span_of_its_own(tmp_path: Path, link: str) -> None:
    """Traces 3: a record naming itself as its parent (by record, or by the span it claims)
    is a root span in the export, as `trace show` draws it. Was a strict xfail until
    `record_span` gave no parent to a span whose parent id is its own."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "log.db", clock)
    own = "0190" + "0" * 27 + "1"
    links = {
        "parent": Links(parent=own),
        "parent claiming a span": Links(parent=own, span=SPAN),
        "parent_span": Links(span=SPAN, parent_span=SPAN),
    }[link]
    recorder(log, Held(), clock).record(
        RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("x"), id=own, links=links)
    )
    exporter = InMemorySpanExporter()
    assert export_otel(log, exporter) == 1
    given = [(entry.index, entry.envelope) for entry in log.stored()]
    for (span,) in (exporter.get_finished_spans(), record_spans(given)):
        assert span.parent is None or span.parent.span_id != span.context.span_id


def test_a_record_edited_with_its_leaf_hash_is_not_sent(tmp_path: Path) -> None:
    """Traces 4: a denial edited into an allow, its stored leaf hash updated to match, the
    log opened again (as `troth trace export --format otel` opens it): refused as
    `troth trace verify` refuses it, the forged record never sent."""
    clock = FixedClock(NOW)
    owner = Held()
    log = open_log(tmp_path / "log.db", clock, owner)
    agent = recorder(log, Held(), clock)
    agent.record(tool_call())
    agent.record(RecordContent(Kind.DENIAL, tool=ToolCall("refund"), decision=Decision("deny")))
    log.close()
    raw = db(log)
    (envelope,) = raw.execute("SELECT envelope FROM leaves WHERE idx = 1").fetchone()
    edited = _allowed_instead(bytes(envelope))
    raw.execute(
        "UPDATE leaves SET envelope = ?, leaf = ? WHERE idx = 1", (edited, leaf_hash(edited))
    )
    raw.close()
    reopened = TraceLog.open(tmp_path / "log.db", clock=clock, signer=owner.signer)
    exporter = InMemorySpanExporter()
    with pytest.raises(TraceError) as refused:
        export_otel(reopened, exporter, batch=1)
    assert refused.value.reason is TraceFailure.BAD_SIGNATURE
    assert refused.value.index == 1
    sent = [
        (span.attributes or {}).get("troth.record.index") for span in exporter.get_finished_spans()
    ]
    assert sent == [0]


def _allowed_instead(envelope: bytes) -> bytes:
    """`envelope` with its payload's decision `deny` made `allow`, its signature kept."""
    value = json.loads(envelope)
    payload = base64.b64decode(value["payload"]).replace(b'"outcome":"deny"', b'"outcome":"allow"')
    assert b'"outcome":"allow"' in payload
    value["payload"] = base64.b64encode(payload).decode()
    return json.dumps(value, separators=(",", ":")).encode()
