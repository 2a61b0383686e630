"""Review 53l: what review 53c and 53i left in traces.

Tools 1: since review 53c an MCP tool is its server's (`Tool::"X" in Server::"NAME"`,
`ToolCall.server`, `ToolGate(server=)`), but the signed record of an allowed or denied call
named the tool alone: a record of `refund` did not say which server's refund the gate let
through. Fixed: the gate's server is the record's `tool.server` (a version 3 record,
docs/formats.md, "Trace records": the version rule), shown by `troth trace show` and the
OTel export (`troth.tool.server`).

Resolutions 1: a human resolved one escalation several times with conflicting outcomes
(`approved`, then `refused`), every answer accepted: which one stands? Fixed: a version 3
resolution's id is derived from its escalation's record hash (as a revocation's from its feed
entry, review 46c), so a resolver's second answer to one escalation is a second record of one
agent under one id: refused at append (`record already in the log`) and reported by
`verify_log` and an export's verification (docs/formats.md, "Trace records": "Decision
traces").
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support.gates import T, lookup_order, make_world, refund
from tests.support.traces import NOW, Held, open_log, recorder
from tests.test_review34g_trace import _insert
from troth.cli.trace_cmds import _tree_line
from troth.clock import FixedClock
from troth.errors import DecodeError, TraceError, TraceFailure
from troth.gates import ListRecorder, Tool, ToolGate
from troth.gates.engine import ToolCall as GatedCall
from troth.trace import Decision, Kind, Links, RecordContent, ToolCall
from troth.trace.adapters import decision_content
from troth.trace.otel import record_span
from troth.trace.otel_names import TROTH_TOOL_SERVER
from troth.trace.record import (
    HASHED_VERSION,
    VERSION,
    TraceRecord,
    canonical_json,
    resolution_id,
    version_of,
)
from troth.trace.record_decode import decode_payload
from troth.trace.signing import open_envelope, sign_record
from troth.trace.view import TraceNode


def _gated(server: str | None, arguments: Any, runner: Held) -> Any:
    world = make_world()
    decisions = ListRecorder()
    point = world.point(world.store(world.bundle()), decisions)
    caller = world.credential(world.support_chain, world.support)
    gate = ToolGate(
        point,
        [Tool.from_function(f) for f in (lookup_order, refund)],
        clock=FixedClock(T + 10),
        server=server,
    )
    gate.invoke(caller, "refund", arguments)
    (decision,) = decisions.records
    content, _chain = decision_content(decision, runner.identifier)
    return content


@pytest.mark.parametrize("arguments", [{"order_id": "o1", "amount": 20}, "not an object"])
def test_a_record_of_a_gated_call_names_its_server(tmp_path: Path, arguments: Any) -> None:
    gate = Held()
    content = _gated("payments", arguments, gate)
    assert content.tool is not None
    assert getattr(content.tool, "server", None) == "payments"
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "log.db", clock)
    signed = recorder(log, gate, clock).record(content)
    record = open_envelope(log.find(signed.record, gate.identifier).envelope)[0]
    assert getattr(record.tool, "server", None) == "payments"
    assert record.version == HASHED_VERSION == version_of(record.tool, record.links)
    span = record_span(record, index=0, record_hash=b"\0" * 32)
    assert span.attributes is not None
    assert span.attributes[TROTH_TOOL_SERVER] == "payments"
    shown = TraceNode(0, record, None).summary({})
    assert (shown["tool"], shown["server"]) == ("refund", "payments")
    assert "tool refund of server payments" in _tree_line(TraceNode(0, record, None), {}, 0, None)


def test_a_gate_of_no_server_writes_version_2_as_before(tmp_path: Path) -> None:
    """No server: the record's bytes are version 2's (no `server` member)."""
    runner = Held()
    content = _gated(None, {"order_id": "o1", "amount": 20}, runner)
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "log.db", clock)
    signed = recorder(log, runner, clock).record(content)
    record, payload = _opened(log.find(signed.record, runner.identifier).envelope)
    assert record.version == VERSION == version_of(record.tool, record.links)
    assert record.tool == ToolCall("refund")
    assert b"server" not in payload
    span = record_span(record, index=0, record_hash=b"\0" * 32)
    assert span.attributes is not None
    assert TROTH_TOOL_SERVER not in span.attributes


def _opened(envelope: bytes) -> tuple[TraceRecord, bytes]:
    record = open_envelope(envelope)[0]
    return record, record.encode()


def _record(version: int, tool: ToolCall) -> TraceRecord:
    return TraceRecord(
        "0" * 32,
        Held().identifier,
        "a" * 64,
        0,
        None,
        NOW,
        Kind.TOOL_INVOCATION,
        tool,
        version=version,
    )


@pytest.mark.parametrize(
    ("version", "tool"),
    [(VERSION, ToolCall("refund", None, "payments")), (HASHED_VERSION, ToolCall("refund"))],
)
def test_one_encoding_per_version(version: int, tool: ToolCall) -> None:
    """A tool's server is in version 3 only, and a version 3 record names a server (or is a
    resolution naming its escalation's hash): refused when signing and when decoding."""
    with pytest.raises(ValueError, match="server"):
        _record(version, tool)
    other = VERSION if version == HASHED_VERSION else HASHED_VERSION
    value = _record(other, ToolCall("refund", None, "payments" if other == 3 else None))
    payload = value.to_json()
    payload["version"] = version
    payload["tool"] = tool.to_json()
    with pytest.raises(DecodeError):
        decode_payload(canonical_json(payload))


def test_the_server_is_canonical_in_the_payload() -> None:
    """The hand-written encoder writes `tool.server` where RFC 8785 puts it."""
    for tool in (ToolCall("refund", None, "payments"), ToolCall("refund", "c1", "pay\u00e9")):
        record = _record(HASHED_VERSION, tool)
        assert record.encode() == canonical_json(record.to_json())
        assert decode_payload(record.encode()) == record


def test_a_second_answer_to_one_escalation_is_refused(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    agent, human = Held(), Held()
    asked = recorder(log, agent, clock).escalate(human.identifier, question="refund 5000?")
    answering = recorder(log, human, clock)
    answering.resolve(
        asked.record, of=agent.identifier, outcome="approved", considered="", reasoning="ok"
    )
    with pytest.raises(TraceError) as refused:
        answering.resolve(
            asked.record, of=agent.identifier, outcome="refused", considered="", reasoning="no"
        )
    assert refused.value.reason is TraceFailure.REPLAYED


def test_a_second_answer_signed_apart_cannot_be_written_into_the_log(tmp_path: Path) -> None:
    """The human's second answer, signed apart (its own seq, after the first) and written into
    the file by the log's operator: it is a second record of one agent under one id, which the
    log's file cannot hold (and `verify_log` and an export's verification refuse, REPLAYED)."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    agent, human = Held(), Held()
    asked = recorder(log, agent, clock).escalate(human.identifier, question="refund 5000?")
    first = recorder(log, human, clock).resolve(
        asked.record, of=agent.identifier, outcome="approved", considered="", reasoning="ok"
    )
    assert first.record == resolution_id(asked.hash)
    again = RecordContent(
        Kind.RESOLUTION,
        values={"inputs": "", "reasoning": "no"},
        decision=Decision("refused"),
        links=Links(parent=asked.record, parent_agent=agent.identifier, parent_hash=asked.hash),
    )
    second = sign_record(human.signer(NOW), again, seq=1, prev=first.hash, time=NOW)
    assert second.record.id == first.record
    with pytest.raises(TraceError) as refused:
        log.append(second)
    assert refused.value.reason is TraceFailure.REPLAYED
    log.close()
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        _insert(log, 2, second)


def test_a_resolution_under_another_id_is_refused() -> None:
    """A version 3 resolution's id is its escalation's: another is refused when signing and
    when decoding (a resolver choosing a fresh id per answer)."""
    human, escalation_hash = Held(), b"\x01" * 32
    links = Links(parent="0" * 32, parent_agent=Held().identifier, parent_hash=escalation_hash)
    good = TraceRecord(
        resolution_id(escalation_hash),
        human.identifier,
        "a" * 64,
        0,
        None,
        NOW,
        Kind.RESOLUTION,
        links=links,
        version=HASHED_VERSION,
    )
    payload = good.to_json()
    payload["id"] = "0" * 31 + "2"
    with pytest.raises(DecodeError):
        decode_payload(canonical_json(payload))
    with pytest.raises(ValueError, match="id is its escalation's"):
        TraceRecord(
            "0" * 31 + "2",
            human.identifier,
            "a" * 64,
            0,
            None,
            NOW,
            Kind.RESOLUTION,
            links=links,
            version=HASHED_VERSION,
        )


def test_a_request_of_a_server_no_record_can_name_is_recorded() -> None:
    """A request made by hand naming a server that is no record text (a control character):
    the engine denies it, and its denial is recorded under a placeholder, not raised."""
    world = make_world()
    decisions = ListRecorder()
    point = world.point(world.store(world.bundle()), decisions)
    caller = world.credential(world.support_chain, world.support)
    request = GatedCall("refund", {"order_id": "o1", "amount": 20}, "", "pay\nments")
    point.decide(caller, request, now=T + 10)
    (decision,) = decisions.records
    content, _chain = decision_content(decision, Held().identifier)
    assert content.kind is Kind.DENIAL
    assert content.tool == ToolCall("refund", None, "(not a server name)")
