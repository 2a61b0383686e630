"""Review 70s (area: collector): attacks on 70o's "signed again" answer that did not work.

- A member of another agent sending the agent's record (as the log holds it, or signed again)
  learns nothing of whether it is in the log: refused SIGNER_INVALID, in the same words, as
  one the log does not hold (no oracle of an id or a content).
- A record under a logged id whose content differs in any member `resign_record` keeps (the
  tool, a commitment, a link, the decision) is refused REPLAYED, not answered ALREADY: the
  comparison is on the decoded record, and a payload decodes only in its canonical form, so
  equal fields are equal bytes outside seq, prev, time and key.
- The log's record spelled in another JSON form (not canonical) and re-dated is refused as
  malformed, not matched by its fields.
- A record honestly signed again (a rotation's) is answered ALREADY, and the log keeps the
  copy it appended: the proof bundle of the id shows those bytes, and verifies offline.
- A batch half appended (its first record), its answer lost, signed again by a rotation: the
  first answered ALREADY, the second refused CHAIN_BROKEN (chained to the first's new bytes)
  is signed again after the log's head and appended; none set aside, none lost.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from tests.test_review69a_outbox import _node_agent
from tests.test_review70s_collector import appended, resent, signed_again
from tests.test_trace_service import NOW, Service, batch_of, reasons, service, tool  # noqa: F401
from troth.errors import TraceFailure
from troth.trace import Decision, Links, ToolCall
from troth.trace.dsse import encode_envelope
from troth.trace.export import verify_bundle
from troth.trace.record import PAYLOAD_TYPE
from troth.trace.signing import open_envelope, resign_record
from troth.trace.submit import Status, SubmittedRecord

F = TraceFailure


def test_a_member_of_another_agent_learns_nothing_of_the_agents_records(
    service: Service,  # noqa: F811
) -> None:
    """Sub sends support's logged record, and support's record the log does not hold, under
    sub's history: both refused alike."""
    world = service.world
    held, _first = appended(service)
    _b, unheld = batch_of(service, world.support, (tool("void"), None))
    _b, own = batch_of(service, world.sub, (tool("lookup_order"), None))
    answers = []
    for submission in (held, unheld):
        theirs = dataclasses.replace(own, records=submission.records)
        result = service.submit(theirs, world.sub).results[0]
        answers.append((result.status, result.reason, result.detail))
    assert answers[0] == answers[1]
    assert answers[0][1] is F.SIGNER_INVALID


@pytest.mark.parametrize("member", ["tool", "digests", "links", "decision"])
def test_other_content_under_a_logged_id_is_refused_replayed(
    service: Service,  # noqa: F811
    member: str,
) -> None:
    """The log's record with one kept member changed, signed again by the agent: REPLAYED."""
    world = service.world
    submission, _first = appended(service)
    item = submission.records[0]
    record = open_envelope(item.envelope)[0]
    changed: dict[str, Any] = {
        "tool": ToolCall("refund_all"),
        "digests": {"args": bytes(32)},
        "links": Links(trace="ab" * 16),
        "decision": Decision("allow"),
    }
    other = dataclasses.replace(record, **{member: changed[member]})
    again = resign_record(
        world.support.signer, other, {}, seq=record.seq, prev=record.prev, time=record.time + 1
    )
    sent = dataclasses.replace(submission, records=(SubmittedRecord(again.envelope, {}),))
    assert reasons(service.submit(sent, world.support)) == [F.REPLAYED]


def test_the_logged_record_in_another_json_spelling_is_refused(
    service: Service,  # noqa: F811
) -> None:
    """The payload with a space after its first brace, re-dated: not canonical, refused."""
    submission, _first = appended(service)
    item = submission.records[0]
    record = open_envelope(item.envelope)[0]
    payload = b"{ " + dataclasses.replace(record, time=record.time + 1).encode()[1:]
    envelope = encode_envelope(PAYLOAD_TYPE, payload, record.key, bytes(64))
    sent = dataclasses.replace(submission, records=(SubmittedRecord(envelope, {}),))
    assert reasons(service.submit(sent, service.world.support)) == [F.MALFORMED]


def test_a_record_signed_again_is_already_and_the_logs_copy_still_proves(
    service: Service,  # noqa: F811
) -> None:
    """An honest re-signing (another time and seq): ALREADY at the first index; the bundle
    carries the envelope the log appended and verifies with nothing but its bytes."""
    world = service.world
    submission, first = appended(service)
    item = submission.records[0]
    record = open_envelope(item.envelope)[0]
    _item, _record, again = signed_again(service, submission, seq=record.seq + 1, prev=bytes(32))
    honest = resent(submission, again.record, open_envelope(again.envelope)[2])
    receipts = service.submit(honest, world.support)
    assert [(r.status, r.index) for r in receipts.results] == [
        (Status.ALREADY, first.results[0].index)
    ]
    bundle = service.collector.prove(record.id, requester=None)
    assert service.log.find(record.id, record.agent).envelope == item.envelope
    report = verify_bundle(bundle)
    assert report.record.id == record.id
    assert report.record.time == record.time


def test_a_half_appended_batch_signed_again_by_a_rotation_loses_nothing(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The log appends the batch's first record only; its answer is lost; a rotation signs
    both again: the resend's first is ALREADY at 0, its second CHAIN_BROKEN, then signed
    again after the log's head and appended at 1."""
    node, outbox = _node_agent(tmp_path)
    try:
        agent = outbox.identifier
        sent = outbox.next_batch(NOW + 5)
        assert sent is not None
        half = dataclasses.replace(sent.submission, records=sent.submission.records[:1])
        service.collector.submit(half, submitter=agent, now=NOW + 5)  # its answer lost
        node.identities.rotate("agent", now=NOW + 10)
        answers = []
        for at in (NOW + 11, NOW + 14):
            again = outbox.next_batch(at)
            assert again is not None
            receipts = service.collector.submit(again.submission, submitter=agent, now=at)
            answers.append([(r.status, r.reason, r.index) for r in receipts.results])
            outbox.answered(receipts, now=at)
        assert answers == [
            [(Status.ALREADY, None, 0), (Status.REFUSED, F.CHAIN_BROKEN, None)],
            [(Status.APPENDED, None, 1)],
        ]
        assert outbox.store.refused(agent=agent.digest, limit=10) == []
        assert outbox.pending() == 0
    finally:
        outbox.close()
        node.close()
