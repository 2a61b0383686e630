"""Review 70s (area: collector): a review of 70o's "signed again" answer (a record in the log
under its id, with other bytes, answered ALREADY when it is the same record signed again).

1. (a forged resubmission acknowledged, medium) The collector answered a record ALREADY when
   its id and content matched the log's record (`signed_again`) before any check of its
   signature, key or disclosures: the log's record under a garbage signature, re-dated, under a
   key the agent never held or another identity's key, or with disclosures that open nothing,
   was acknowledged in the log, and its sender's row dropped as delivered. A resubmission that
   is not byte for byte the log's record is now verified as an append would verify it (its key
   attested for the signer at its time, its signature, its disclosures) before it is answered
   ALREADY; one that does not verify is refused with that reason.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest

from tests.test_trace_service import Service, batch_of, reasons, service, tool  # noqa: F401
from troth.errors import TraceFailure
from troth.trace.dsse import encode_envelope, pae
from troth.trace.record import PAYLOAD_TYPE, TraceRecord
from troth.trace.signing import VerifiedRecord, keyid_of, open_envelope, resign_record
from troth.trace.submit import Receipts, Status, Submission, SubmittedRecord

F = TraceFailure


def appended(service: Service) -> tuple[Submission, Receipts]:  # noqa: F811
    """One record of support's, appended (its answer is the one a client lost)."""
    world = service.world
    _batcher, submission = batch_of(service, world.support, (tool("refund", n=20), None))
    first = service.submit(submission, world.support)
    assert [r.status for r in first.results] == [Status.APPENDED]
    return submission, first


def signed_again(
    service: Service,  # noqa: F811
    submission: Submission,
    **place: Any,
) -> tuple[SubmittedRecord, TraceRecord, VerifiedRecord]:
    """`submission`'s record, the logged one, signed again by support one second later (or at
    the `place`, seq / prev / time, given): the item sent, the record, its re-signing."""
    item = submission.records[0]
    record = open_envelope(item.envelope)[0]
    at = {"seq": record.seq, "prev": record.prev, "time": record.time + 1, **place}
    again = resign_record(service.world.support.signer, record, item.disclosures, **at)
    return item, record, again


def resent(
    submission: Submission,
    record: TraceRecord,
    signature: bytes,
    *,
    attestations: tuple[bytes, ...] | None = None,
    disclosures: bool = True,
) -> Submission:
    """`submission` with its record replaced by `record` under `signature`."""
    item = submission.records[0]
    envelope = encode_envelope(PAYLOAD_TYPE, record.encode(), record.key, signature)
    sent = SubmittedRecord(envelope, item.disclosures if disclosures else {})
    given = submission.attestations if attestations is None else attestations
    return dataclasses.replace(submission, records=(sent,), attestations=given)


@pytest.mark.parametrize("changed", ["nothing", "time", "seq"])
def test_a_resubmission_under_a_forged_signature_is_refused(
    service: Service,  # noqa: F811
    changed: str,
) -> None:
    """70s collector 1: the log's record (as it is, re-dated, or at another seq) under a
    signature nobody made is refused BAD_SIGNATURE, not acknowledged in the log."""
    submission, _first = appended(service)
    record = open_envelope(submission.records[0].envelope)[0]
    if changed == "time":
        record = dataclasses.replace(record, time=record.time + 1)
    elif changed == "seq":
        record = dataclasses.replace(record, seq=record.seq + 1, prev=bytes(32))
    forged = resent(submission, record, bytes(64))
    assert reasons(service.submit(forged, service.world.support)) == [F.BAD_SIGNATURE]
    assert service.log.size() == 1


def test_a_resubmission_under_a_key_of_no_attestation_is_refused(
    service: Service,  # noqa: F811
) -> None:
    """70s collector 1: the log's record under a key the agent never held (no attestation
    of it sent) is refused UNKNOWN_KEY, not acknowledged."""
    submission, _first = appended(service)
    record = open_envelope(submission.records[0].envelope)[0]
    stranger = dataclasses.replace(record, key=os.urandom(32).hex())
    assert reasons(service.submit(resent(submission, stranger, bytes(64)), None)) == [F.UNKNOWN_KEY]


def test_a_resubmission_signed_by_another_identitys_key_is_refused(
    service: Service,  # noqa: F811
) -> None:
    """70s collector 1: the log's record of support's signed by sub's key (its attestation
    sent) is refused, not acknowledged: sub's key is no key of support's history."""
    world = service.world
    submission, _first = appended(service)
    record = open_envelope(submission.records[0].envelope)[0]
    other = world.sub.signer
    theirs = dataclasses.replace(record, key=keyid_of(other.attestation))
    signature = other.sign(pae(PAYLOAD_TYPE, theirs.encode()))
    forged = resent(submission, theirs, signature, attestations=(other.attestation,))
    result = service.submit(forged, world.support).results[0]
    assert result.status is Status.REFUSED
    assert result.reason is not F.REPLAYED


def test_a_record_signed_again_with_disclosures_that_open_nothing_is_refused(
    service: Service,  # noqa: F811
) -> None:
    """70s collector 1: the log's record honestly signed again (another time) but sent with a
    disclosure that does not open its commitment is refused DISCLOSURE_MISMATCH, as an append
    is, not acknowledged."""
    world = service.world
    submission, _first = appended(service)
    item, _record, again = signed_again(service, submission)
    other = dataclasses.replace(item.disclosures["args"], value=b'{"n":5000}')
    forged = SubmittedRecord(again.envelope, {"args": other})
    receipts = service.submit(dataclasses.replace(submission, records=(forged,)), world.support)
    assert reasons(receipts) == [F.DISCLOSURE_MISMATCH]
