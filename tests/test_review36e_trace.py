"""Review 36e, traces: logs written before record ids were per agent still verify.

Review 36a made record ids unique per agent: a parent link to another agent's record names
that agent (`links.parent_agent`), and a link without it means the signer's own record. The
record's version stayed 1, so every record written before the change that links another
agent's record by id alone (every resolution: the human's record whose parent is the agent's
escalation, as demo chapter 6 wrote them) was read with the new meaning:

1. An old log (the golden vectors of version 1, the bytes the old code wrote) no longer
   verified: its resolution's parent was looked for among the resolver's own records
   (`is not an escalation in the log`), so `verify_log` and `troth trace verify` reported a
   legitimately written log as broken.
2. An old agent's outbox holding such a resolution had it refused by the new log.
3. `troth trace show` hung an old record linking another agent's step as a root, and the OTel
   export gave it a parent span of the signer's own (no such span).

Records are now version 2 (docs/formats.md, "Trace records": the version rule); a version 1
record keeps its meaning, made safe: its parent is the signer's own record under the id if
the log (or export) holds one, else the one record under the id of any agent; several agents'
records under it make the link ambiguous, reported (LINK_INVALID naming the record), never
resolved to one of them. Each test marked below was a strict xfail until that change.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.traces import NOW, Held, open_log, recorder
from tests.vectors.trace.generate import CREATED
from troth.clock import FixedClock
from troth.errors import DecodeError, DecodeProblem, TraceError, TraceFailure
from troth.identity import Identifier, verify_history
from troth.trace import verify_log
from troth.trace.dsse import encode_envelope, pae
from troth.trace.export import export_jsonl, verify_export
from troth.trace.log import TraceLog
from troth.trace.otel import export_otel
from troth.trace.record import PAYLOAD_TYPE, Decision, Kind, Links
from troth.trace.record_decode import decode_payload
from troth.trace.signing import (
    RecordContent,
    VerifiedRecord,
    keyid_of,
    sign_record,
    verify_envelope,
)
from troth.trace.verify import LogMaterial, LogVerifier
from troth.trace.view import trace_tree

V1: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "trace" / "trace_vectors_v1.json").read_text()
)["vectors"]


def _as_v1(held: Held, verified: VerifiedRecord) -> VerifiedRecord:
    """`verified` as the old encoder wrote and signed it: version 1, and a parent named by its
    id alone (that encoder had no `parent_agent`)."""
    payload = re.sub(rb',"parent_agent":"T[0-9a-f]{64}"', b"", verified.record.encode())
    payload = re.sub(rb'"version":[0-9]+}$', b'"version":1}', payload)
    signer = held.signer(NOW)
    keyid = keyid_of(signer.attestation)
    envelope = encode_envelope(
        PAYLOAD_TYPE, payload, keyid, signer.sign(pae(PAYLOAD_TYPE, payload))
    )
    return verify_envelope(
        envelope,
        signer=held.identity,
        attestation=signer.attestation,
        disclosures=verified.disclosures,
    )


def _escalation(agent: Held, to: Identifier, record_id: str | None = None) -> VerifiedRecord:
    content = RecordContent(
        Kind.ESCALATION, values={"inputs": "refund 5000?"}, escalation_to=to, id=record_id
    )
    return sign_record(agent.signer(NOW), content, seq=0, prev=None, time=NOW)


def _resolution(human: Held, escalation: VerifiedRecord) -> VerifiedRecord:
    """`human`'s first record: the resolution of `escalation` (another agent's), version 1."""
    content = RecordContent(
        Kind.RESOLUTION,
        values={"inputs": "order history", "reasoning": "loyal"},
        decision=Decision("approved"),
        links=Links(parent=escalation.record.id, parent_agent=escalation.record.agent),
    )
    signed = sign_record(human.signer(NOW), content, seq=0, prev=None, time=NOW)
    return _as_v1(human, signed)


def _export(log: TraceLog) -> list[bytes]:
    out = io.StringIO()
    export_jsonl(log, out)
    return [line.encode() for line in out.getvalue().splitlines()]


def _v1_vector_verifier() -> LogVerifier:
    agent = verify_history(bytes.fromhex(V1["agent_history"]), now=CREATED)
    log = verify_history(bytes.fromhex(V1["log_history"]), now=CREATED)
    attestations = {
        keyid_of(bytes.fromhex(V1[name])): bytes.fromhex(V1[name])
        for name in ("agent_attestation", "log_attestation")
    }
    material = LogMaterial(
        histories={
            agent.identifier: bytes.fromhex(V1["agent_history"]),
            log.identifier: bytes.fromhex(V1["log_history"]),
        },
        attestations=attestations,
        checkpoints=(V1["checkpoint"].encode(),),
        log_identity=log.identifier,
    )
    return LogVerifier(material)


def test_the_version_1_golden_log_still_verifies() -> None:
    """Trace 1: the golden vectors the old code wrote (a resolution linking the agent's
    escalation by id alone, signed by another identity) verify as a log: the resolution is
    judged against the one record under its parent id, the agent's escalation. Was a strict
    xfail until record version 2 (version 1 links resolved by the version 1 rule)."""
    verifier = _v1_vector_verifier()
    records = [
        verifier.add(index, stored["envelope"].encode())
        for index, stored in enumerate(V1["records"])
    ]
    report = verifier.finish()
    assert (report.size, report.agents) == (3, 2)
    assert records[2].links.parent == records[1].id
    assert records[2].links.parent_agent is None
    assert [r.version for r in records] == [1, 1, 1]


def test_an_old_outbox_resolution_is_appended_and_verifies(tmp_path: Path) -> None:
    """Traces 1-2: an old agent's escalation and an old human's resolution of it (version 1,
    the escalation named by id alone) are appended, and the log and its export verify. Was a
    strict xfail until record version 2."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    agent, human = Held(), Held()
    asked = _as_v1(agent, _escalation(agent, human.identifier))
    log.append(asked)
    answer = _resolution(human, asked)
    assert log.append(answer).index == 1
    assert verify_log(log).size == 2
    report = verify_export(_export(log))
    assert (report.records, report.agents) == (2, 2)
    (root,) = trace_tree(log)
    assert (root.record.id, [c.index for c in root.children]) == (asked.record.id, [1])


class _Spans:
    """An OTel span exporter that keeps what it is given."""

    def __init__(self) -> None:
        self.spans: list[Any] = []

    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def shutdown(self) -> None:
        return None


def test_an_old_link_to_another_agents_step_shows_and_exports_under_it(tmp_path: Path) -> None:
    """Trace 3: an old agent B's step linking agent A's step by id alone (a multi-agent flow,
    version 1) hangs under A's step in `troth trace show`, and its OTel parent span is A's
    record's span. Was a strict xfail until record version 2."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    a, b = Held(), Held()
    step = _as_v1(a, _escalation(a, b.identifier))
    log.append(step)
    content = RecordContent(
        Kind.TOOL_INVOCATION,
        values={"result": "done"},
        links=Links(parent=step.record.id, parent_agent=a.identifier),
    )
    log.append(_as_v1(b, sign_record(b.signer(NOW), content, seq=0, prev=None, time=NOW)))
    (root,) = trace_tree(log)
    assert [c.index for c in root.children] == [1]
    spans = _Spans()
    assert export_otel(log, spans) == 2  # type: ignore[arg-type]
    first, second = spans.spans
    assert second.parent is not None
    assert second.parent.span_id == first.context.span_id


def test_an_ambiguous_version_1_link_is_reported_never_resolved(tmp_path: Path) -> None:
    """A version 1 link to an id several agents have records under, none before it (ids are
    per agent now: B's old step, appended before the record it links, then A's record and
    M's under that id) names no record: `verify_log` and `verify_export` report it as
    LINK_INVALID naming the step; the log refuses a version 1 resolution whose link is
    ambiguous already. Was a strict xfail until record version 2. (Until review 36g, trace
    1, a record under the id signed after an old link made that link ambiguous too: the
    link now keeps the one record before it, tests/test_review36g_trace.py.)"""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    agent, b, human, m = Held(), Held(), Held(), Held()
    asked = _as_v1(agent, _escalation(agent, human.identifier))
    content = RecordContent(
        Kind.TOOL_INVOCATION, values={"result": "x"}, links=Links(asked.record.id)
    )
    step = _as_v1(b, sign_record(b.signer(NOW), content, seq=0, prev=None, time=NOW))
    log.append(step)  # index 0: no record under the id yet
    log.append(asked)
    log.append(_escalation(m, human.identifier, asked.record.id))  # version 2, M's own id
    with pytest.raises(TraceError) as caught:
        verify_log(log)
    assert caught.value.reason is TraceFailure.LINK_INVALID
    assert "ambiguous" in caught.value.detail
    assert (caught.value.record, caught.value.index) == (step.record.id, 0)
    with pytest.raises(TraceError) as exported:
        verify_export(_export(log))
    assert exported.value.reason is TraceFailure.LINK_INVALID
    assert "ambiguous" in exported.value.detail
    assert exported.value.record == step.record.id
    roots = trace_tree(log)  # hung under neither
    assert [(root.index, root.children) for root in roots] == [(0, []), (1, []), (2, [])]
    spans = _Spans()
    export_otel(log, spans)  # type: ignore[arg-type]
    assert spans.spans[0].parent is None  # nor under either in OTel
    with pytest.raises(TraceError) as refused:
        log.append(_resolution(human, asked))
    assert refused.value.reason is TraceFailure.LINK_INVALID
    assert "ambiguous" in refused.value.detail


def test_a_version_1_link_takes_the_signers_own_record_first(tmp_path: Path) -> None:
    """A version 1 link whose signer holds a record under the id is to that record, however
    many other agents hold one (that is what the old log meant when the id was the
    signer's): kept through the change."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    a, m, human = Held(), Held(), Held()
    mine = _as_v1(a, _escalation(a, human.identifier))
    log.append(mine)
    log.append(_escalation(m, human.identifier, mine.record.id))
    content = RecordContent(
        Kind.TOOL_INVOCATION, values={"result": "x"}, links=Links(mine.record.id)
    )
    child = _as_v1(a, sign_record(a.signer(NOW), content, seq=1, prev=mine.hash, time=NOW))
    log.append(child)
    assert verify_log(log).size == 3
    assert verify_export(_export(log)).records == 3
    roots = trace_tree(log)
    assert [[c.index for c in root.children] for root in roots] == [[2], []]


def test_a_version_2_link_without_parent_agent_is_never_another_agents(tmp_path: Path) -> None:
    """Records are version 2 now, and a version 2 link without `parent_agent` is to the
    signer's own record only: a resolution naming another agent's escalation that way is
    refused (no escalation of its own under the id), a step is not hung under another
    agent's record. Was a strict xfail until record version 2 (the links were already read
    so; the records were version 1)."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    agent, human = Held(), Held()
    asked = _escalation(agent, human.identifier)
    log.append(asked)
    bare = RecordContent(
        Kind.RESOLUTION,
        values={"inputs": "x", "reasoning": "y"},
        decision=Decision("approved"),
        links=Links(parent=asked.record.id),
    )
    with pytest.raises(TraceError) as caught:
        recorder(log, human, clock).record(bare)
    assert caught.value.reason is TraceFailure.LINK_INVALID
    assert "not an escalation in the log" in caught.value.detail
    step = RecordContent(Kind.TOOL_INVOCATION, values={"result": "x"}, links=Links(asked.record.id))
    recorder(log, human, clock).record(step)
    assert [root.children for root in trace_tree(log)] == [[], []]
    assert asked.record.encode().endswith(b'"version":2}')
    assert asked.record.version == 2


def test_one_encoding_per_version() -> None:
    """A version 1 record naming a parent agent is refused (version 1 had none), as is an
    unknown version; records of versions 1 and 2 decode. Was a strict xfail until record
    version 2."""
    agent, human = Held(), Held()
    asked = _escalation(agent, human.identifier)
    content = RecordContent(
        Kind.RESOLUTION,
        values={"inputs": "x", "reasoning": "y"},
        decision=Decision("approved"),
        links=Links(parent=asked.record.id, parent_agent=agent.identifier),
    )
    v2 = sign_record(human.signer(NOW), content, seq=0, prev=None, time=NOW).record.encode()
    assert decode_payload(v2).version == 2
    with pytest.raises(DecodeError, match="version 1") as caught:
        decode_payload(v2.replace(b'"version":2}', b'"version":1}'))
    assert caught.value.problem is not DecodeProblem.UNKNOWN_VERSION
    with pytest.raises(DecodeError) as unknown:
        decode_payload(v2.replace(b'"version":2}', b'"version":4}'))
    assert unknown.value.problem is DecodeProblem.UNKNOWN_VERSION
    v1 = _resolution(human, asked).record.encode()
    assert decode_payload(v1).version == 1
    assert decode_payload(v1).encode() == v1
