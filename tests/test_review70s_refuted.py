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
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tests.test_review70s_collector import appended, resent
from tests.test_trace_service import Service, batch_of, reasons, service, tool  # noqa: F401
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
    again = resign_record(
        world.support.signer,
        record,
        item.disclosures,
        seq=record.seq + 1,
        prev=bytes(32),
        time=record.time + 1,
    )
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
