"""Review 62k: attacks on this session's trace fixes that the code withstood (each a passing
test that fails if the defence breaks)."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.traces import NOW, Held, open_log, recorder
from tests.test_review62b_traces import FORGED, denials_signed
from troth.cli.trace_cmds import _tree_line
from troth.clock import FixedClock
from troth.errors import DecodeError
from troth.trace import Kind, Links, RecordContent, ToolCall
from troth.trace.export import hashed_checkpoint
from troth.trace.log import TraceLog
from troth.trace.otel import export_otel, record_spans
from troth.trace.record import (
    Authority,
    Decision,
    SpanTimes,
    TraceRecord,
    canonical_json,
    resolution_id,
)
from troth.trace.record_decode import decode_payload
from troth.trace.signing import open_envelope
from troth.trace.view import TraceNode

VECTORS = Path(__file__).parent / "vectors" / "trace"
AGENT = Held().identifier
OTHER = Held().identifier
KEY = "ab" * 32
ID = "0" * 31 + "1"
TEXTS = [
    'quote " and backslash \\ and slash /',
    "line\u2028separator\u2029paragraph",
    "emoji \U0001f600 and CJK \u8def",
    unicodedata.normalize("NFC", "caf\u00e9"),
    unicodedata.normalize("NFD", "caf\u00e9"),
    "\u00a0no-break space and tab-free",
]


@pytest.mark.parametrize("name", ["trace_vectors.json", "trace_vectors_v1.json"])
def test_every_golden_record_decodes_to_its_own_bytes(name: str) -> None:
    """62a trace 1: the payload must be the record's own encoding; every golden record of
    versions 1 and 2 (as troth wrote them) still decodes, and encodes back byte for byte."""
    records = json.loads((VECTORS / name).read_text())["vectors"]["records"]
    assert len(records) == 3
    for item in records:
        payload = item["payload"].encode()
        record = decode_payload(payload)
        assert record.encode() == payload
        assert open_envelope(item["envelope"].encode())[1] == payload


def _full(text: str, *, version: int = 2, digests_order: tuple[str, ...] = ()) -> TraceRecord:
    """A record with every optional member a kind allows, its free texts `text`."""
    names = digests_order or ("args", "result", "inputs", "reasoning")
    server = text if version == 3 else None
    return TraceRecord(
        id=ID,
        agent=AGENT,
        key=KEY,
        seq=2**53 - 1,
        prev=b"\x01" * 32,
        time=2**53 - 1,
        kind=Kind.ESCALATION,
        tool=ToolCall(text, call=text, server=server),
        digests={name: name.encode().ljust(32, b"\x00") for name in names},
        decision=Decision(text, bundle=text, policies=(text, "p2")),
        authority=Authority(b"\x02" * 32, ((b"\x03" * 16, b"\x04" * 32),), at=text),
        links=Links(ID, text, text, text, text, OTHER),
        escalation_to=OTHER,
        span=SpanTimes(0, 2**53 - 1, "error"),
        version=version,
    )


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_a_record_with_every_member_and_unusual_texts_decodes(text: str, version: int) -> None:
    """62a trace 1: escapes, line separators, astral characters, NFC and NFD spellings, the
    largest integers, every optional member: each record decodes from its own encoding to
    itself, which is also the standard canonical encoding of its object."""
    record = _full(text, version=version)
    payload = record.encode()
    assert payload == canonical_json(record.to_json())
    assert decode_payload(payload) == record


def test_nfc_and_nfd_are_two_records_each_its_own() -> None:
    """62a trace 1: no normalisation: two spellings are two records, each decoding to itself."""
    nfc, nfd = (_full(text) for text in TEXTS[3:5])
    assert nfc.encode() != nfd.encode()
    assert decode_payload(nfc.encode()) == nfc
    assert decode_payload(nfd.encode()) == nfd


def test_a_version_3_resolution_decodes() -> None:
    """62a trace 1: a resolution naming its escalation's hash (version 3) decodes."""
    escalation_hash = b"\x05" * 32
    record = TraceRecord(
        id=resolution_id(escalation_hash),
        agent=AGENT,
        key=KEY,
        seq=0,
        prev=None,
        time=NOW,
        kind=Kind.RESOLUTION,
        decision=Decision("approved"),
        links=Links(ID, parent_agent=OTHER, parent_hash=escalation_hash),
        version=3,
    )
    assert decode_payload(record.encode()) == record


def test_one_record_has_one_encoding_whatever_its_digests_order() -> None:
    """62a trace 1: `encode` cannot give two encodings of one record: digests made in another
    order (a dict's order) encode alike."""
    orders = [("args", "result", "inputs", "reasoning"), ("reasoning", "inputs", "result", "args")]
    records = [_full("x", digests_order=order) for order in orders]
    assert list(records[0].digests) != list(records[1].digests)
    assert records[0].digests == records[1].digests
    assert {r.encode() for r in records} == {records[0].encode()}


@pytest.mark.parametrize(
    "spell",
    [
        lambda p: p.replace(b'"seq":0', b'"seq":0.0'),
        lambda p: p.replace(b'"seq":0', b'"seq":-0'),
        lambda p: p.replace(b'"seq":0', b'"seq":0e0'),
        lambda p: p.replace(b'"kind":"decision"', b'"kind":"\\u0064ecision"'),
        lambda p: p.replace(b'"name":"r\xc3\xa9ad"', b'"name":"r\\u00e9ad"'),
        lambda p: p.replace(b"{", b"{ ", 1),
        lambda p: b'{"time":1,' + p[1:],  # a duplicate member, first
        lambda p: p.replace(AGENT.digest.hex().encode(), AGENT.digest.hex().upper().encode()),
    ],
    ids=[
        "float",
        "minus zero",
        "exponent",
        "escaped ascii",
        "escaped non-ascii",
        "space",
        "duplicate",
        "upper hex",
    ],
)
def test_another_spelling_of_a_record_is_refused(spell: object) -> None:
    """62a trace 1: the payload's other spellings (a float, -0, an exponent, a \\u escape, a
    space, a duplicate member, an identifier's hex in capitals) are refused."""
    record = TraceRecord(
        id=ID,
        agent=AGENT,
        key=KEY,
        seq=0,
        prev=None,
        time=NOW,
        kind=Kind.DECISION,
        tool=ToolCall("r\u00e9ad"),
        decision=Decision("allow"),
    )
    payload = record.encode()
    assert decode_payload(payload) == record
    edited = spell(payload)  # type: ignore[operator]
    assert edited != payload
    with pytest.raises(DecodeError):
        decode_payload(edited)


def _spans(log: TraceLog) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    export_otel(log, exporter)
    return list(exporter.get_finished_spans())


def test_an_empty_log_exports_nothing_and_hashes_to_its_checkpoint(tmp_path: Path) -> None:
    """62b traces 4: `hashed_checkpoint` of an empty log is its (empty) checkpoint, and the
    OTel export of it sends nothing, without an error."""
    log = open_log(tmp_path / "log.db", FixedClock(NOW))
    assert hashed_checkpoint(log).size == 0
    assert _spans(log) == []


def test_records_appended_during_the_otel_export_are_left_to_the_next(tmp_path: Path) -> None:
    """62b traces 4: an agent appending while the export sends (here: each time a batch is
    sent): the export sends the records its check covered, no error, none appended since."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "log.db", clock)
    agent = recorder(log, Held(), clock)
    for _ in range(3):
        agent.record(RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("read")))

    class Appending(InMemorySpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            agent.record(RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("late")))
            return super().export(spans)

    exporter = Appending()
    assert export_otel(log, exporter, batch=1) == 3
    assert log.size() == 6
    names = [(s.attributes or {}).get("gen_ai.tool.name") for s in exporter.get_finished_spans()]
    assert names == ["read"] * 3


def test_many_children_of_one_parent_cost_one_lookup_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """62b traces 3: records linking one claiming parent: one look-up of the parent per
    record linking it (none for the others), and each is under the parent's span."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "log.db", clock)
    agent = recorder(log, Held(), clock)
    top = agent.record(
        RecordContent(
            Kind.TOOL_INVOCATION, tool=ToolCall("plan"), links=Links(span="00000000000000bb")
        )
    )
    for _ in range(5):
        agent.record(
            RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("step"), links=Links(top.record))
        )
    looked: list[str] = []
    find = TraceLog.find

    def counting(self: TraceLog, record_id: str, agent: object = None) -> object:
        looked.append(record_id)
        return find(self, record_id, agent)  # type: ignore[arg-type]

    monkeypatch.setattr(TraceLog, "find", counting)
    parent, *children = _spans(log)
    assert looked == [top.record] * 5
    assert {c.parent and c.parent.span_id for c in children} == {parent.context.span_id}


def test_another_agents_record_claiming_the_span_id_takes_no_child(tmp_path: Path) -> None:
    """62b traces 3: agents A and B each claim one span id (B's is not renamed: claims are
    per signer); each one's child is under its own agent's span, in the log and alone."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "log.db", clock)
    signers = [recorder(log, Held(), clock) for _ in range(2)]
    for signer in signers:
        claimed = signer.record(
            RecordContent(
                Kind.TOOL_INVOCATION, tool=ToolCall("x"), links=Links(span="00000000000000cc")
            )
        )
        signer.record(RecordContent(Kind.MESSAGE, links=Links(claimed.record)))
    given = [(entry.index, entry.envelope) for entry in log.stored()]
    for spans in (_spans(log), record_spans(given)):
        a, a_child, b, b_child = spans
        assert a.context.span_id != b.context.span_id
        assert "troth.span.renamed" not in (b.attributes or {})
        assert a_child.parent is not None
        assert b_child.parent is not None
        assert a_child.parent.span_id == a.context.span_id
        assert b_child.parent.span_id == b.context.span_id


@pytest.mark.parametrize("name", ["allow", "rev", "under", "T" + "0" * 64, "x--y", "-x"])
def test_a_plain_tool_name_stays_one_field_of_a_shown_line(tmp_path: Path, name: str) -> None:
    """Lead's `_field` (62b traces 2): a plain name (a decision's word, the line's own words,
    an identifier's form) is one field: the line's fields, split at two spaces, are the
    record's, the denial's decision where it belongs."""
    (record,) = denials_signed(tmp_path, name)
    line = _tree_line(TraceNode(0, record, None), {record.agent: "runner"}, 0, None)
    assert record.decision is not None
    decided = f"{record.decision.outcome} by [-] rev {record.decision.bundle}"
    assert line.split("  ") == ["#0", "runner", "denial", f"tool {name}", decided]


def test_trace_show_json_keeps_the_text_as_signed(tmp_path: Path) -> None:
    """Lead's `_field`: only the text lines quote; `trace show --json` (`TraceNode.to_json`)
    holds the tool name as signed, spaces and all."""
    (record,) = denials_signed(tmp_path, FORGED)
    shown = TraceNode(0, record, None).to_json({})
    assert shown["tool"] == FORGED
    assert json.dumps(FORGED) not in json.dumps(shown["tool"])[1:-1]
