"""Review 55b: attacks on the trace pipeline (an agent's record to the node's log) that did not
work. Each is a real attempt and fails if the defence it met breaks: a queued record of the
outbox with a byte flipped, a disclosed value edited, a row duplicated under another id, a
stale row planted from another agent's record (a writer of node.db without the agent's key); a
member replaying one record 10,000 times, two records at one seq in a batch; a stolen backup's
old key once the node knows the rotation; an answer for another number of records."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.traces import Held
from tests.test_identity_observe import observer
from tests.test_review27t_collect import NOW as STOLEN_AT
from tests.test_review27t_collect import _batch, _collector
from tests.test_review55b_head import two_queued
from tests.test_trace_outbox import (  # noqa: F401 - `outboxes` is a fixture
    Outboxes,
    logged,
    outboxes,
)
from tests.test_trace_service import (  # noqa: F401 - `service` is a fixture
    NOW,
    Service,
    batch_of,
    service,
    tool,
)
from troth.errors import TraceError, TraceFailure
from troth.trace.batcher import TraceBatcher
from troth.trace.outbox import TraceOutbox
from troth.trace.record import Kind, ToolCall, encode_disclosures
from troth.trace.signing import RecordContent
from troth.trace.stored import decode_disclosures
from troth.trace.submit import Receipts, Status

F = TraceFailure


def _send_all(service: Service, outbox: TraceOutbox) -> None:  # noqa: F811
    """Batches sent and answered until no row is queued (at most 8 rounds; the rows, not the
    counters, which an edit of node.db leaves as they were)."""
    assert outbox.claim()
    for _ in range(8):
        batch = outbox.next_batch(NOW)
        if batch is not None:
            outbox.answered(service.submit(batch.submission, service.world.support), now=NOW)
        elif not outbox.store.first(outbox.identifier.digest, 1):
            return
    raise AssertionError("still queued")


def _edit(path: Path, sql: str, *args: object) -> None:
    raw = sqlite3.connect(path, isolation_level=None)  # a writer of node.db, no key
    raw.execute(sql, args)
    raw.close()


def test_a_byte_flipped_in_a_queued_envelope_is_set_aside_not_lost_silently(
    service: Service,  # noqa: F811
    outboxes: Outboxes,  # noqa: F811
) -> None:
    outbox = outboxes.open()
    made = [outbox.add(tool("refund", n=n), now=NOW).record for n in range(3)]
    raw = sqlite3.connect(outboxes.path, isolation_level=None)
    (envelope,) = raw.execute(
        "SELECT envelope FROM trace_outbox WHERE record = ?", (made[1],)
    ).fetchone()
    raw.close()
    flipped = bytearray(envelope)
    flipped[-20] ^= 0x01  # inside the signature's base64
    _edit(
        outboxes.path,
        "UPDATE trace_outbox SET envelope = ? WHERE record = ?",
        bytes(flipped),
        made[1],
    )
    _send_all(service, outbox)
    assert [entry[0] for entry in logged(service)] == [made[0], made[2]]  # the rest delivered
    (refused,) = outbox.store.refused()
    assert refused.record == made[1]
    assert refused.reason in (F.BAD_SIGNATURE.value, F.MALFORMED.value)


def test_an_edited_disclosure_is_refused_and_never_reaches_the_log(
    service: Service,  # noqa: F811
    outboxes: Outboxes,  # noqa: F811
) -> None:
    outbox = outboxes.open()
    made = outbox.add(tool("refund", n=1), now=NOW).record
    raw = sqlite3.connect(outboxes.path, isolation_level=None)
    (blob,) = raw.execute("SELECT disclosures FROM trace_outbox").fetchone()
    raw.close()
    held = decode_disclosures(bytes(blob))
    salt = held["args"].salt
    edited = {**held, "args": type(held["args"])(salt, b'{"n":1000000}')}
    _edit(outboxes.path, "UPDATE trace_outbox SET disclosures = ?", encode_disclosures(edited))
    _send_all(service, outbox)
    assert logged(service) == []
    (refused,) = outbox.store.refused()
    assert (refused.record, refused.reason) == (made, F.DISCLOSURE_MISMATCH.value)


def test_a_row_duplicated_under_another_id_is_appended_once(
    service: Service,  # noqa: F811
    outboxes: Outboxes,  # noqa: F811
) -> None:
    outbox = outboxes.open()
    made = outbox.add(tool("refund"), now=NOW).record
    _edit(
        outboxes.path,
        "INSERT INTO trace_outbox (agent, record, seq, hash, time, made, envelope, disclosures,"
        " attestation, chain, size) SELECT agent, 'copy', seq, hash, time, made, envelope,"
        " disclosures, attestation, chain, size FROM trace_outbox",
    )
    _send_all(service, outbox)
    assert [entry[0] for entry in logged(service)] == [made]
    assert outbox.store.refused() == []


def test_a_stale_row_planted_from_another_agents_record_is_never_signed(
    service: Service,  # noqa: F811
    outboxes: Outboxes,  # noqa: F811
) -> None:
    """Another identity's genuine record (its signature good) planted as a stale row of the
    node's agent: the agent signs nothing of it."""
    outbox = outboxes.open()
    outbox.add(tool("refund"), now=NOW)
    other = service.world.authority
    foreign = TraceOutbox(outbox.store.db, other.identifier, lambda now: other.signer)
    planted = foreign.add(tool("wire"), now=NOW).record
    _edit(
        outboxes.path,
        "UPDATE trace_outbox SET agent = ?, stale = 1 WHERE record = ?",
        service.world.support.identifier.digest,
        planted,
    )
    _send_all(service, outbox)
    logged_ids = [entry[0] for entry in logged(service)]
    assert planted not in logged_ids
    assert len(logged_ids) == 1
    (refused,) = outbox.store.refused()
    assert (refused.record, refused.reason) == (planted, F.SIGNER_INVALID.value)


def test_ten_thousand_replays_of_one_record_append_it_once(service: Service) -> None:  # noqa: F811
    support = service.world.support
    _, submission = batch_of(service, support, (tool("refund"), None))
    (item,) = submission.records
    replays = type(submission)(submission.history, submission.attestations, (), tuple([item] * 250))
    for round_ in range(40):  # 40 x 250: 10,000 submissions of the record
        receipts = service.submit(replays, support)
        want = [Status.ALREADY] * 250 if round_ else [Status.APPENDED] + [Status.ALREADY] * 249
        assert [r.status for r in receipts.results] == want
        assert {r.index for r in receipts.results} == {0}
    assert service.log.size() == 1


def test_two_records_at_one_seq_in_a_batch_append_one(service: Service) -> None:  # noqa: F811
    support = service.world.support
    _, one = batch_of(service, support, (tool("refund", n=1), None))
    _, two = batch_of(service, support, (tool("refund", n=2), None))  # also seq 0
    both = type(one)(one.history, one.attestations, (), (*one.records, *two.records))
    receipts = service.submit(both, support)
    assert [r.status for r in receipts.results] == [Status.APPENDED, Status.REFUSED]
    assert receipts.results[1].reason is F.CHAIN_BROKEN
    assert service.log.size() == 1


def test_an_answer_for_another_number_of_records_deletes_nothing(
    service: Service,  # noqa: F811
    outboxes: Outboxes,  # noqa: F811
) -> None:
    """A service that answers a batch of two with one receipt (a lie, or another batch's)."""
    outbox, submission = two_queued(outboxes)
    lie = Receipts((service.submit(submission, service.world.support).results[0],), None)
    with pytest.raises(TraceError) as raised:
        outbox.answered(lie, now=NOW)
    assert raised.value.reason is F.MALFORMED
    assert outbox.pending() == 2
    batcher = TraceBatcher(lambda now: service.world.support.signer)
    batcher.set_head(None)
    batcher.add(tool("refund"), now=NOW)
    assert batcher.next_batch(NOW) is not None
    with pytest.raises(TraceError):
        batcher.answered(Receipts((), None))
    assert batcher.pending() == 1


def test_a_stolen_backups_old_key_is_refused_once_the_node_knows_the_rotation(
    tmp_path: Path,
) -> None:
    """A thief holding a backup of the agent (its history and key before a rotation) submits
    records as the agent once the node stored the rotated history: none is appended; the
    agent's own, with its new key, is."""
    _, log, collector = _collector(tmp_path)
    store = observer(tmp_path / "node.db", cache_seconds=0)
    collector._observe = store.observe
    agent = Held(now=STOLEN_AT - 1000)
    stolen = agent.signer(STOLEN_AT - 100)  # the backup's key, under change 0
    agent.rotate(STOLEN_AT - 10)
    store.observe(agent.identity)  # the agent's channel showed the rotation
    content = RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("wire_everything_out"))
    forged = _batch(collector, stolen, content)
    receipts = collector.submit(forged, submitter=agent.identifier, now=STOLEN_AT)
    assert [r.reason for r in receipts.results] == [F.ATTESTATION_STALE]
    assert log.size() == 0
    genuine = _batch(collector, agent.signer(STOLEN_AT), content)
    (result,) = collector.submit(genuine, submitter=agent.identifier, now=STOLEN_AT).results
    assert result.delivered, result.detail
    log.close()
