"""Review 48a: attacks on trace collection that the code already refused (passing tests).

An enrolled member (or a thief holding a member's key from before a rotation) against a
node's trace collector and service: replays, records signed as another agent, a per-agent
sequence with gaps or duplicates across two batches, a history older than the node's copy.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, tool_call
from tests.test_identity_observe import observer
from tests.test_review46a_traces import _service
from tests.test_review47i_collector import _long_collector
from tests.test_trace_node import step
from troth import limits
from troth.channel.verification import VerifiedPeer
from troth.clock import FixedClock
from troth.encoding import cbor
from troth.errors import RemoteError, TraceFailure
from troth.identity import Signer
from troth.node.access import Decision, MembersOnly, PeerCaller
from troth.node.services.base import RequestContext
from troth.storage import SqliteDatabase
from troth.trace.batcher import SUBMIT_ROOM, TraceBatcher
from troth.trace.collect import TraceCollector
from troth.trace.outbox import TraceOutbox
from troth.trace.submit import Head, Receipts, Status, Submission

AT = NOW + 100


def _collector(path: Path, observe: object = None) -> TraceCollector:
    collector = _long_collector(path, None, FixedClock(AT))
    if observe is not None:
        collector._observe = observe  # type: ignore[assignment]
    return collector


def _submission(
    collector: TraceCollector, signer: Signer, count: int = 1, head: Head | None = None
) -> Submission:
    """`count` records of `signer`'s chained on `head` (default: its head in the log)."""
    batcher = TraceBatcher(lambda now: signer)
    if head is None:
        head = collector.head(signer.identity.identifier).head
    batcher.set_head(head)
    for n in range(count):
        batcher.add(step(n), now=AT)
    batch = batcher.next_batch(AT)
    assert batch is not None
    return batch.submission


def test_a_batch_replayed_is_answered_with_the_same_indices_and_appended_once(
    tmp_path: Path,
) -> None:
    """The same batch sent 200 times: appended once, every later send answered ALREADY at
    the same indices; the log holds 3 records."""
    agent = Held()
    collector = _collector(tmp_path / "trace.db")
    batch = _submission(collector, agent.signer(AT), 3)
    first = collector.submit(batch, submitter=agent.identifier, now=AT)
    assert [r.status for r in first.results] == [Status.APPENDED] * 3
    for _ in range(200):
        again = collector.submit(batch, submitter=agent.identifier, now=AT)
        assert [r.status for r in again.results] == [Status.ALREADY] * 3
        assert [r.index for r in again.results] == [r.index for r in first.results]
    assert collector.log.size() == 3
    collector.log.close()


def test_a_member_replaying_a_batch_spends_its_budget_then_is_busy(tmp_path: Path) -> None:
    """A member sending one small batch again and again (10,000 times if it could) is charged
    TRACE_SUBMIT_CHARGE per send, answered or not: TRACE_SUBMIT_BURST_BYTES // that, then
    `busy`, and the log holds the batch once."""
    agent = Held()
    collector = _collector(tmp_path / "trace.db")
    service = _service(collector)
    peer = VerifiedPeer(agent.identity, ())
    context = RequestContext(PeerCaller(peer, "channel-1"), (), Decision(True), AT)
    arguments = _submission(collector, agent.signer(AT)).to_cbor()
    most = limits.TRACE_SUBMIT_BURST_BYTES // limits.TRACE_SUBMIT_CHARGE
    served, refusal = 0, ""
    for _ in range(10_000):
        try:
            asyncio.run(service.submit(arguments, context))
        except RemoteError as exc:
            refusal = str(exc)
            break
        served += 1
    assert served == most
    assert "busy" in refusal
    assert collector.log.size() == 1
    collector.log.close()


def test_a_member_submitting_another_agents_records_is_refused(tmp_path: Path) -> None:
    """Member A sends B's batch (B's history, B's records): every record refused
    SIGNER_INVALID. A's batch carrying B's record among its own: that record refused (it
    names another agent), A's own appended; the log holds nothing of B's."""
    a, b = Held(), Held()
    collector = _collector(tmp_path / "trace.db")
    theirs = _submission(collector, b.signer(AT), 2)
    refused = collector.submit(theirs, submitter=a.identifier, now=AT)
    assert {r.reason for r in refused.results} == {TraceFailure.SIGNER_INVALID}
    mine = _submission(collector, a.signer(AT), 1)
    mixed = Submission(
        mine.history,
        (*mine.attestations, *theirs.attestations),
        (),
        (theirs.records[0], *mine.records),
    )
    results = collector.submit(mixed, submitter=a.identifier, now=AT).results
    assert results[0].reason is TraceFailure.SIGNER_INVALID
    assert results[1].status is Status.APPENDED
    assert collector.log.head(b.identifier) is None
    assert collector.log.size() == 1
    collector.log.close()


@pytest.mark.parametrize("case", ["a gap", "a duplicate seq"])
def test_a_sequence_with_a_gap_or_a_duplicate_across_two_batches_is_refused(
    tmp_path: Path, case: str
) -> None:
    """Batch 1 appends seq 0 and 1. Batch 2 chained as if the head were seq 2 (seq 3 next:
    a gap) or seq 0 (seq 1 again, another record: a duplicate) is refused CHAIN_BROKEN,
    every record of it, and the log's head stays at seq 1."""
    agent = Held()
    signer = agent.signer(AT)
    collector = _collector(tmp_path / "trace.db")
    first = collector.submit(_submission(collector, signer, 2), submitter=None, now=AT)
    assert all(r.delivered for r in first.results)
    head = collector.head(agent.identifier).head
    assert head is not None
    assert head.seq == 1
    forged = Head(2, head.hash, head.time) if case == "a gap" else Head(0, head.hash, head.time)
    second = collector.submit(_submission(collector, signer, 2, forged), submitter=None, now=AT)
    assert {r.reason for r in second.results} == {TraceFailure.CHAIN_BROKEN}
    assert collector.head(agent.identifier).head == head
    assert collector.log.size() == 2
    collector.log.close()


def test_a_thief_with_a_key_from_before_a_rotation_the_node_knows_is_refused(
    tmp_path: Path,
) -> None:
    """The agent records at change 0, then rotates; the node learns the new history (its
    channel) but the log's copy stays at change 0. A thief holding the change-0 key and history
    sends a batch as the agent: refused, nothing appended, the log's copy of the agent as it
    was. (Refused SIGNER_INVALID before review 48a, resend 1; now ATTESTATION_STALE, as a
    batch of the agent's own signed before its rotation is: signed again with the newest key,
    which the thief does not hold, it would be appended.)"""
    agent = Held()
    old = agent.signer(AT)
    store = observer(tmp_path / "node.db")
    collector = _collector(tmp_path / "trace.db", store.observe)
    first = collector.submit(_submission(collector, old), submitter=agent.identifier, now=AT)
    assert first.results[0].delivered
    agent.rotate(AT + 1)
    store.observe(agent.identity)  # the node's channel to the agent after its rotation
    before = collector.log.history(agent.identifier)
    stolen = _submission(collector, old, 1)
    (result,) = collector.submit(stolen, submitter=agent.identifier, now=AT + 2).results
    assert result.reason is TraceFailure.ATTESTATION_STALE, result
    assert "the node holds a later change" in result.detail
    assert collector.log.size() == 1
    assert collector.log.history(agent.identifier) == before
    collector.log.close()


@pytest.mark.parametrize("shape", ["256 small records", "records of 100 KB values"])
def test_every_batch_an_outbox_packs_is_taken_by_the_service(tmp_path: Path, shape: str) -> None:
    """Limits end to end: what a node's durable outbox packs into a batch (at most
    MAX_TRACE_SUBMIT_RECORDS records, MAX_SERVICE_MESSAGE less the request's frame) decodes as
    a submission at the service, within MAX_SERVICE_MESSAGE encoded, is charged within a
    member's burst, and every record is appended: 600 small records (three batches, the first
    two full), or 24 records each disclosing 100 KB (about 10 a batch)."""
    agent = Held()
    signer = agent.signer(AT)
    collector = _collector(tmp_path / "trace.db")
    service = _service(collector)
    peer = VerifiedPeer(agent.identity, ())
    context = RequestContext(PeerCaller(peer, "channel-1"), (), Decision(True), AT)
    outbox = TraceOutbox(SqliteDatabase(tmp_path / "node.db"), agent.identifier, lambda _: signer)
    count, value = (600, 1) if shape == "256 small records" else (24, "v" * 100_000)
    for n in range(count):
        outbox.add(tool_call(args={"n": n, "v": value}), now=AT)
    sizes: list[int] = []
    largest = 0
    while outbox.pending():
        batch = outbox.next_batch(AT)
        assert batch is not None
        request = cbor.encode(batch.submission.to_cbor())
        assert len(request) + SUBMIT_ROOM <= limits.MAX_SERVICE_MESSAGE
        sizes.append(len(batch.items))
        largest = max(largest, len(request))
        answer = asyncio.run(service.submit(cbor.decode(request), context))
        receipts = Receipts.from_cbor(answer, expected=len(batch.items))
        assert all(r.status is Status.APPENDED for r in receipts.results), receipts
        outbox.answered(receipts, now=AT)
    assert collector.log.size() == count
    if count == 600:
        assert sizes == [limits.MAX_TRACE_SUBMIT_RECORDS] * 2 + [88]
    else:  # packed by bytes: the first batches within 4 % of the limit
        assert sizes[0] < 24
        assert largest > limits.MAX_SERVICE_MESSAGE * 96 // 100
    collector.log.close()


def test_every_trace_method_is_for_members_only(tmp_path: Path) -> None:
    """An unauthenticated peer (or one without a credential from an authority the node
    trusts) reaches no trace method: each is behind `MembersOnly`, with no authority of its
    own (the decision point: tests/test_node_access.py), `held` and `head` included."""
    collector = _collector(tmp_path / "trace.db")
    service = _service(collector)
    assert set(service.methods) == {"submit", "head", "held", "prove"}
    for method in service.methods.values():
        assert method.rule == MembersOnly()
    collector.log.close()
