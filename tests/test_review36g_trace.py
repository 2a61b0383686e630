"""Review 36g, traces: a record signed today cannot unsettle an old log's version 1 links.

Record version 2 (review 36e) reads a version 1 link, an id alone, as the signer's own record
under the id, else the one agent's record under it, and reports it ambiguous when several
agents have one. Ids are per agent now, so anyone who can append to a log can sign a record
under the id an old link names (the id of an agent's escalation that a human's old resolution
answers):

1. After the fact, `verify_log` (so `troth trace verify`) reported the old, legitimately
   written resolution as ambiguous: a third party turned an honest log's verification red.
2. So did `verify_export` on an export of the log.
3. `troth trace show` and the OTel export unhooked the old resolution from its escalation.

A version 1 link is now resolved first among the records before it in the log (or export):
old logs had unique ids log-wide, so the one earlier record under the id is the one it meant,
and a later record cannot change that. Only when no earlier record holds the id does the link
look at all records (it may point forward: a step appended before the record it links), with
ambiguity reported, never resolved (docs/formats.md, "Trace records": the version rule). The
tests of traces 1-3 were strict xfails until that change (`parent_record` takes the linking
record's index; the holders carry where the first two agents' records under the id are); the
forward-link and batch tests pin the rest of the rule.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, open_log
from tests.test_review36e_trace import _as_v1, _escalation, _export, _resolution, _Spans
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import verify_log
from troth.trace.export import verify_export
from troth.trace.log import TraceLog
from troth.trace.otel import export_otel
from troth.trace.record import Kind, Links
from troth.trace.signing import RecordContent, VerifiedRecord, sign_record
from troth.trace.view import trace_tree


def _old_log(tmp_path: Path) -> tuple[TraceLog, VerifiedRecord, VerifiedRecord, Held]:
    """A log holding an agent's old escalation (index 0) and a human's old resolution of it
    (index 1, the escalation named by id alone), as written before ids were per agent."""
    log = open_log(tmp_path / "trace.db", FixedClock(NOW))
    agent, human = Held(), Held()
    asked = _as_v1(agent, _escalation(agent, human.identifier))
    log.append(asked)
    answer = _resolution(human, asked)
    log.append(answer)
    return log, asked, answer, human


def _squat(log: TraceLog, asked: VerifiedRecord, human: Held) -> None:
    """Another identity signs an escalation to the same human under the old escalation's id
    (ids are per agent: the log admits it) and appends it: index 2."""
    m = Held()
    assert log.append(_escalation(m, human.identifier, asked.record.id)).index == 2


def shown_as_written(log: TraceLog) -> None:
    """`trace show` and the OTel export of an old log of three: the answer (1) under the
    escalation (0), the later record (2) a root of its own."""
    roots = trace_tree(log)
    assert [(root.index, [c.index for c in root.children]) for root in roots] == [
        (0, [1]),
        (2, []),
    ]
    spans = _Spans()
    assert export_otel(log, spans) == 3  # type: ignore[arg-type]
    first, second, _third = spans.spans
    assert second.parent is not None
    assert second.parent.span_id == first.context.span_id


def _step(signer: Held, parent: str, *, seq: int = 0, prev: bytes | None = None) -> VerifiedRecord:
    """`signer`'s version 1 tool step linking record `parent` by id alone."""
    content = RecordContent(Kind.TOOL_INVOCATION, values={"result": "done"}, links=Links(parent))
    return _as_v1(signer, sign_record(signer.signer(NOW), content, seq=seq, prev=prev, time=NOW))


def test_a_later_record_under_an_old_links_id_leaves_the_log_verifying(tmp_path: Path) -> None:
    """Trace 1: M's record under the id an old resolution links, appended after it, leaves
    `verify_log` (what `troth trace verify` runs) verifying the log: the link is to the one
    record before it under the id, the agent's escalation. Was a strict xfail until version
    1 links were resolved among earlier records first."""
    log, asked, _answer, human = _old_log(tmp_path)
    assert verify_log(log).size == 2
    _squat(log, asked, human)
    report = verify_log(log)
    assert (report.size, report.agents) == (3, 3)


def test_a_later_record_under_an_old_links_id_leaves_the_export_verifying(
    tmp_path: Path,
) -> None:
    """Trace 2: as trace 1, for an export of the log (`verify_export`, `troth trace verify
    --export`): lines are placed by their log index. Was a strict xfail until version 1
    links were resolved among earlier records first."""
    log, asked, _answer, human = _old_log(tmp_path)
    _squat(log, asked, human)
    report = verify_export(_export(log))
    assert (report.records, report.agents) == (3, 3)
    lines = _export(log)
    assert verify_export([lines[2], lines[0], lines[1]]).records == 3  # in any line order


def test_a_later_record_under_an_old_links_id_leaves_show_and_otel_as_written(
    tmp_path: Path,
) -> None:
    """Trace 3: after M's record under the id, `troth trace show` still hangs the old
    resolution under the agent's escalation, and its OTel parent span is the escalation's
    span. Was a strict xfail until version 1 links were resolved among earlier records
    first."""
    log, asked, _answer, human = _old_log(tmp_path)
    _squat(log, asked, human)
    shown_as_written(log)


def test_a_later_record_leaves_an_old_resolution_appendable(tmp_path: Path) -> None:
    """Trace 1, at append: the log sees only earlier records: an old step whose parent one
    agent holds is admitted, an old resolution of an id two agents hold already is refused
    as ambiguous (the squat came first: no record before the link tells which was meant),
    and the log still verifies. Was a strict xfail until version 1 links were resolved
    among earlier records first."""
    log, asked, answer, human = _old_log(tmp_path)
    again = _step(human, asked.record.id, seq=1, prev=answer.hash)
    assert log.append(again).index == 2
    log.append(_escalation(Held(), human.identifier, asked.record.id))
    with pytest.raises(TraceError) as refused:
        log.append(_resolution(Held(), asked))
    assert refused.value.reason is TraceFailure.LINK_INVALID
    assert "ambiguous" in refused.value.detail
    assert verify_log(log).size == 4


def test_a_forward_version_1_link_resolves_when_one_record_holds_the_id(tmp_path: Path) -> None:
    """A version 1 link may point forward (a step appended before the record it links,
    written when ids were unique log-wide): with no record before it under the id, the one
    record after it is its parent, in `verify_log`, the export, `trace show` and OTel."""
    log = open_log(tmp_path / "trace.db", FixedClock(NOW))
    a, b, human = Held(), Held(), Held()
    later = _as_v1(a, _escalation(a, human.identifier))
    step = _step(b, later.record.id)
    log.append(step)  # index 0: links an id no record holds yet
    log.append(later)  # index 1
    assert verify_log(log).size == 2
    assert verify_export(_export(log)).records == 2
    (root,) = trace_tree(log)
    assert (root.index, [c.index for c in root.children]) == (1, [0])
    spans = _Spans()
    export_otel(log, spans)  # type: ignore[arg-type]
    first, second = spans.spans
    assert first.parent is not None
    assert first.parent.span_id == second.context.span_id


def test_one_batch_resolves_version_1_links_as_appends_one_by_one(tmp_path: Path) -> None:
    """In one batch (`append_many`), the records admitted before a version 1 link count as
    the log's: an old resolution of the batch's own escalation is admitted, a record under
    that id by another agent too, and a second old resolution after both is refused as
    ambiguous; the log verifies as written (the first resolution keeps its escalation)."""
    log = open_log(tmp_path / "trace.db", FixedClock(NOW))
    agent, human, m, other = Held(), Held(), Held(), Held()
    asked = _as_v1(agent, _escalation(agent, human.identifier))
    answer = _resolution(human, asked)
    squat = _escalation(m, human.identifier, asked.record.id)
    late = _resolution(other, asked)
    results = log.append_many([asked, answer, squat, late])
    assert [getattr(r, "index", None) for r in results[:3]] == [0, 1, 2]
    refused = results[3]
    assert isinstance(refused, TraceError)
    assert refused.reason is TraceFailure.LINK_INVALID
    assert "ambiguous" in refused.detail
    assert verify_log(log).size == 3
    assert [[c.index for c in root.children] for root in trace_tree(log)] == [[1], []]
