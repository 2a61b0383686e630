"""Review 36a, traces: a record id is bound to its signer (review 34g, trace 5).

Record ids were one namespace for the whole log, each chosen by its signer: an agent M that
learnt agent A's record id X before A's record reached the log (a parent link handed to it in
a multi-agent flow, while A's records wait in an outbox) signed a record of its own under X
and got it in first. Then:

1. A's record was refused by the log (`record already in the log`) and by a trace service
   (`another record with this id is in the log`, before the log is asked): set aside by A's
   outbox, lost from the log.
2. Every link to X resolved to M's record: a resolution of A's escalation X was judged
   against M's record (refused when M's asked someone else, or accepted when M's asked the
   resolver's accomplice), `troth trace show` hung A's children under M's record, and the
   OTel export derived one span id for both.
3. An export holding both records (had both got in) was refused as repeating a record.

Ids are now unique per agent: the log files each record under (record id, agent), a parent
link to another agent's record names that agent (`links.parent_agent`, docs/formats.md,
"Trace records"), and every lookup by id (`find`, `prove`, `redact`, a member's `prove`, the
collector's replay check) names the agent or refuses an id several agents have. Each test
below was a strict xfail until that change.
"""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest

from tests.support.cli import run, run_json
from tests.support.traces import NOW, Held, as_schema_3, db, open_log, recorder, tool_call
from tests.test_review27t_collect import NOW as SERVED
from tests.test_review27t_collect import _always, _collector
from troth.clock import FixedClock, SystemClock
from troth.errors import DecodeError, NotFound, TraceError, TraceFailure
from troth.identity import Identifier
from troth.node import open_node, troth_home
from troth.trace import TraceRecorder, verify_log
from troth.trace.batcher import TraceBatcher
from troth.trace.export import export_jsonl, prove, verify_bundle, verify_export
from troth.trace.log import open_node_log
from troth.trace.otel import record_span
from troth.trace.record import Decision, Kind, Links, ToolCall
from troth.trace.record_decode import decode_payload
from troth.trace.signing import RecordContent, VerifiedRecord, open_envelope, sign_record
from troth.trace.store import TRACE_MIGRATIONS
from troth.trace.submit import Status
from troth.trace.view import trace_tree


def _escalation(agent: Held, to: Identifier, record_id: str | None = None) -> VerifiedRecord:
    """`agent`'s first record: an escalation asking `to` (under `record_id`, if given)."""
    content = RecordContent(
        Kind.ESCALATION, values={"inputs": "refund 5000?"}, escalation_to=to, id=record_id
    )
    return sign_record(agent.signer(NOW), content, seq=0, prev=None, time=NOW)


def _resolution(human: Held, escalation: str, of: Identifier) -> RecordContent:
    return RecordContent(
        Kind.RESOLUTION,
        values={"inputs": "order history", "reasoning": "loyal"},
        decision=Decision("approved"),
        links=Links(parent=escalation, parent_agent=of),
    )


def test_a_squatted_id_keeps_no_record_out_and_links_name_the_agents_record(
    tmp_path: Path,
) -> None:
    """Traces 1-2: M signs an escalation under A's id X (asking M's accomplice E) and gets it
    in first; A's escalation X (asking H) is still appended, H's resolution of A's X is judged
    against A's record (accepted), E's resolution naming A's X is refused (A did not ask E),
    and lookups by X name whose record they mean."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    a, m, human, accomplice = Held(), Held(), Held(), Held()
    real = _escalation(a, human.identifier)
    squat = _escalation(m, accomplice.identifier, real.record.id)
    assert log.append(squat).index == 0
    assert log.append(real).index == 1
    x = real.record.id
    answer = recorder(log, human, clock).record(_resolution(human, x, a.identifier))
    assert answer.index == 2
    with pytest.raises(TraceError) as caught:
        recorder(log, accomplice, clock).record(_resolution(accomplice, x, a.identifier))
    assert caught.value.reason is TraceFailure.LINK_INVALID
    assert f"escalated to {human.identifier}" in caught.value.detail
    assert verify_log(log).size == 3
    assert log.find(x, a.identifier).envelope == real.envelope
    assert log.find(x, m.identifier).envelope == squat.envelope
    with pytest.raises(NotFound, match="name the agent"):
        log.find(x)  # which one is meant is the caller's to say
    bundle = verify_bundle(prove(log, x, a.identifier))
    assert bundle.record.agent == a.identifier
    assert sorted(map(str, log.agents_of(x))) == sorted(map(str, (a.identifier, m.identifier)))


def test_the_same_record_twice_is_still_refused(tmp_path: Path) -> None:
    """Replays stay refused: A's record again, and another record of A under the same id."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    a = Held()
    first = sign_record(a.signer(NOW), tool_call(), seq=0, prev=None, time=NOW)
    log.append(first)
    with pytest.raises(TraceError) as again:
        log.append(first)
    assert again.value.reason is TraceFailure.REPLAYED
    other = RecordContent(Kind.TOOL_INVOCATION, values={"result": "x"}, id=first.record.id)
    second = sign_record(a.signer(NOW), other, seq=1, prev=first.hash, time=NOW)
    with pytest.raises(TraceError) as reused:
        log.append(second)
    assert reused.value.reason is TraceFailure.REPLAYED
    assert log.size() == 1


def test_a_member_record_under_a_squatted_id_is_appended_and_proved(tmp_path: Path) -> None:
    """Trace 1 through a trace service: the collector looked the id up in the whole log and
    refused the member's record (`another record with this id is in the log`); now it is
    appended, a resend of it is answered `already`, and the member's `prove` of the id gives
    its own record, never the squatter's."""
    world, _log, collector = _collector(tmp_path)
    mine = TraceBatcher(_always(world.support.signer))
    mine.set_head(None)
    mine.add(RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("lookup_order")), now=SERVED)
    batch = mine.next_batch(SERVED)
    assert batch is not None
    x = open_envelope(batch.submission.records[0].envelope)[0].id
    squatter = TraceBatcher(_always(world.sub.signer))
    squatter.set_head(None)
    squatter.add(RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("squat"), id=x), now=SERVED)
    squatted = squatter.next_batch(SERVED)
    assert squatted is not None
    (taken,) = collector.submit(squatted.submission, submitter=None, now=SERVED).results
    assert taken.status is Status.APPENDED
    (result,) = collector.submit(batch.submission, submitter=None, now=SERVED).results
    assert (result.status, result.index) == (Status.APPENDED, 1), result.detail
    (resent,) = collector.submit(batch.submission, submitter=None, now=SERVED).results
    assert (resent.status, resent.index) == (Status.ALREADY, 1)
    proved = collector.prove(x, requester=world.support.identifier)
    assert verify_bundle(proved).record.agent == world.support.identifier
    squatter_proof = collector.prove(x, requester=world.sub.identifier)
    assert verify_bundle(squatter_proof).record.agent == world.sub.identifier


def test_an_export_with_two_agents_records_under_one_id_verifies(tmp_path: Path) -> None:
    """Trace 3, and the resolution in an export is judged against the escalation its link
    names, not the other agent's record under the id."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    a, m, human = Held(), Held(), Held()
    real = _escalation(a, human.identifier)
    log.append(_escalation(m, m.identifier, real.record.id))  # asks someone else
    log.append(real)
    recorder(log, human, clock).record(_resolution(human, real.record.id, a.identifier))
    out = io.StringIO()
    export_jsonl(log, out)
    lines = [line.encode() for line in out.getvalue().splitlines()]
    report = verify_export(lines)
    assert (report.records, report.agents) == (3, 3)


def test_a_link_to_a_squatted_id_shows_and_exports_under_the_agents_record(
    tmp_path: Path,
) -> None:
    """Trace 2 in `troth trace show` and the OTel export: A's step naming A's parent X sits
    under A's record, and its OTel parent span is A's record's span, not M's."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    a, m = Held(), Held()
    parent = sign_record(a.signer(NOW), tool_call(), seq=0, prev=None, time=NOW)
    squat = sign_record(
        m.signer(NOW),
        RecordContent(Kind.TOOL_INVOCATION, values={"result": "x"}, id=parent.record.id),
        seq=0,
        prev=None,
        time=NOW,
    )
    log.append(squat)
    log.append(parent)
    child = RecordContent(
        Kind.TOOL_INVOCATION, values={"result": "y"}, links=Links(parent=parent.record.id)
    )
    sign = sign_record(a.signer(NOW), child, seq=1, prev=parent.hash, time=NOW)
    log.append(sign)
    roots = trace_tree(log)
    by_agent = {root.record.agent: root for root in roots}
    assert [c.index for c in by_agent[a.identifier].children] == [2]
    assert by_agent[m.identifier].children == []
    spans = {
        r.index: record_span(open_envelope(r.envelope)[0], index=r.index, record_hash=b"\0" * 32)
        for r in log.records()
    }
    child_parent = spans[2].parent
    assert child_parent is not None
    assert child_parent.span_id == spans[1].context.span_id
    assert child_parent.span_id != spans[0].context.span_id


def test_a_parent_agent_has_one_encoding() -> None:
    """A link naming the record's own agent as `parent_agent` is refused (one encoding of a
    parent of its own; `sign_record` drops it), and so is a parent agent without a parent."""
    a = Held()
    own = RecordContent(
        Kind.TOOL_INVOCATION, links=Links(parent="0" * 32, parent_agent=a.identifier)
    )
    signed = sign_record(a.signer(NOW), own, seq=0, prev=None, time=NOW)
    assert signed.record.links.parent_agent is None
    forged = signed.record.encode().replace(
        b'"parent":"' + b"0" * 32 + b'"',
        b'"parent":"' + b"0" * 32 + b'","parent_agent":"' + str(a.identifier).encode() + b'"',
    )
    with pytest.raises(DecodeError, match="parent agent"):
        decode_payload(forged)
    with pytest.raises(ValueError, match="only with a parent"):
        Links(parent_agent=a.identifier)


def test_a_schema_3_log_is_filed_per_agent_when_opened(tmp_path: Path) -> None:
    """A log made before ids were per agent (schema 3: `leaves.record_id` unique in the log)
    is migrated when opened: its records filed under their agents, still verifying, and it
    takes another agent's record under an id it holds."""
    clock = FixedClock(NOW)
    owner, a, m = Held(), Held(), Held()
    log = open_log(tmp_path / "trace.db", clock, owner)
    first = recorder(log, a, clock).record(tool_call())
    log.close()
    raw = db(log)
    as_schema_3(raw)
    with pytest.raises(sqlite3.IntegrityError):  # schema 3: one id in the whole log
        raw.execute("INSERT INTO leaves VALUES (9, ?, x'00', x'00', NULL)", (first.record,))
    raw.close()
    assert len(TRACE_MIGRATIONS) == 4
    reopened = open_log(tmp_path / "trace.db", clock, owner)
    assert reopened.find(first.record, a.identifier).index == 0
    squat = RecordContent(Kind.TOOL_INVOCATION, values={"result": "x"}, id=first.record)
    assert recorder(reopened, m, clock).record(squat).index == 1
    assert verify_log(reopened).size == 2


def test_the_cli_resolves_the_escalation_of_the_agent_named() -> None:
    """`troth trace resolve RECORD_ID`: when another agent (mallory) also has an escalation
    asking alice under the id, the CLI does not pick one (`name the agent`); with `--agent`
    the resolution links to that agent's record, and the answer says whose it resolved."""
    run("identity", "create", "support")
    run("identity", "create", "mallory")
    alice = Identifier.parse(run_json("identity", "create", "alice")["identifier"])
    clock = SystemClock()
    with open_node("default", home=troth_home()) as node, open_node_log(node, clock=clock) as log:
        support = TraceRecorder(
            log, lambda now: node.identities.signer("support", now=now), clock=clock
        )
        mallory = TraceRecorder(
            log, lambda now: node.identities.signer("mallory", now=now), clock=clock
        )
        asked = support.escalate(alice, question="refund 5000?")
        mallory.record(
            RecordContent(
                Kind.ESCALATION, values={"inputs": "x"}, escalation_to=alice, id=asked.record
            )
        )
        support_id = str(support.agent)
    args = ("--as", "alice", "--outcome", "approved", "--considered", "x", "--reasoning", "y")
    unsure = run_json("trace", "resolve", asked.record, *args, code=1)
    assert "name the agent" in unsure["detail"]
    done = run_json("trace", "resolve", asked.record, *args, "--agent", "support")
    assert (done["resolves"], done["of"]) == (asked.record, support_id)
    bundle = json.loads(run("trace", "prove", asked.record, "--agent", "support").stdout)
    assert bundle["record"]["agent"] == support_id
    tree = run_json("trace", "show")
    under = [root for root in tree if root["id"] == asked.record and root["children"]]
    assert [child["kind"] for root in under for child in root["children"]] == ["resolution"]
