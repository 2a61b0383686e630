"""Review 55b, head 1: a client kept the head it knew whenever an answer reported none, taking
"none" for a batch refused whole (an invalid signer: such an answer reports no head). But an
answer reports none too when the service's log holds no record of the agent: a log restored
from a backup made before the agent's first record, or begun afresh by the collector it is
pinned to. Every record was then signed after the head the log no longer holds, refused `per-
agent chain broken` ("expected 0"), signed again on the same stale head three times and set
aside: every record the node made from then on, for good (the outbox keeps the head in
node.db, so a restart changed nothing), until the outbox filled and the node stopped. An answer
that refuses a record `per-agent chain broken` is the log's word on where the agent's chain
stands: its head, none included, is now taken. Chains 1 (the same log's loss, the chains a
client took for kept) is below."""

from __future__ import annotations

from pathlib import Path

from tests.support.gates import T
from tests.support.parties import make_party
from tests.test_trace_outbox import (  # noqa: F401 - `outboxes` is a fixture
    Outboxes,
    logged,
    outboxes,
)
from tests.test_trace_service import (  # noqa: F401 - `service` is a fixture
    NOW,
    Service,
    service,
    tool,
)
from troth.channel.verification import remember_nothing
from troth.trace import TraceLog
from troth.trace.batcher import TraceBatcher
from troth.trace.collect import TraceCollector
from troth.trace.outbox import TraceOutbox
from troth.trace.submit import Submission


def two_queued(outboxes: Outboxes) -> tuple[TraceOutbox, Submission]:  # noqa: F811
    """A fresh outbox holding two records, claimed, and the submission of its batch of both."""
    outbox = outboxes.open()
    for n in range(2):
        outbox.add(tool("refund", n=n), now=NOW)
    assert outbox.claim()
    batch = outbox.next_batch(NOW)
    assert batch is not None
    return outbox, batch.submission


def _begun_afresh(service: Service, path: Path) -> Service:  # noqa: F811
    """The same collector's node with its log begun afresh (or restored from a backup made
    before the agent's first record)."""
    world = service.world
    owner = make_party(world.vault, now=T)
    log = TraceLog.open(path, clock=service.clock, signer=lambda now: owner.signer)
    collector = TraceCollector(
        log,
        verifier=lambda: world.verifier,
        feeds=world.feeds,
        observe=lambda identity: None,
        vouched=remember_nothing,
    )
    return Service(world, log, collector, service.clock, [])


def test_an_outbox_goes_on_after_the_services_log_lost_the_agents_records(
    service: Service,  # noqa: F811
    outboxes: Outboxes,  # noqa: F811
    tmp_path: Path,
) -> None:
    party = service.world.support
    outbox, submission = two_queued(outboxes)
    outbox.answered(service.submit(submission, party), now=NOW)
    assert len(logged(service)) == 2
    afresh = _begun_afresh(service, tmp_path / "afresh.db")
    made = outbox.add(tool("refund", n=2), now=NOW).record
    for _ in range(4):  # as many rounds as three signatures and a delivery take
        batch = outbox.next_batch(NOW)
        if batch is None:
            break
        outbox.answered(afresh.submit(batch.submission, party), now=NOW)
    assert outbox.store.refused() == []
    assert [(entry[0], entry[1]) for entry in logged(afresh)] == [(made, 0)]


def test_a_batcher_goes_on_after_the_services_log_lost_the_agents_records(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    party = service.world.support
    batcher = TraceBatcher(lambda now: party.signer)
    batcher.set_head(None)
    batcher.add(tool("refund"), now=NOW)
    batch = batcher.next_batch(NOW)
    assert batch is not None
    batcher.answered(service.submit(batch.submission, party))
    afresh = _begun_afresh(service, tmp_path / "afresh.db")
    queued = batcher.add(tool("refund", n=1), now=NOW)
    for _ in range(4):
        batch = batcher.next_batch(NOW)
        if batch is None:
            break
        batcher.answered(afresh.submit(batch.submission, party))
    assert queued.result() == 0


def test_a_chain_the_services_log_lost_is_sent_again(
    service: Service,  # noqa: F811
    outboxes: Outboxes,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Review 55b, chains 1: a client sends a chain once and then believes the log keeps it
    (`_kept_chains`); the log begun afresh refused each later record under that chain `the
    chain the record names was not sent (nor is it kept)`, set aside for good, in every
    process that sent one before. The client now forgets a chain so refused and sends the
    record again with it (once: a second such refusal is the record's own)."""
    party, chain = service.world.support, service.world.support_chain
    outbox = outboxes.open()
    outbox.add(tool("refund", chain), chain=chain, now=NOW)
    assert outbox.claim()
    batch = outbox.next_batch(NOW)
    assert batch is not None
    outbox.answered(service.submit(batch.submission, party), now=NOW)
    afresh = _begun_afresh(service, tmp_path / "afresh.db")
    made = outbox.add(tool("refund", chain, n=1), chain=chain, now=NOW).record
    for _ in range(4):
        batch = outbox.next_batch(NOW)
        if batch is None:
            break
        outbox.answered(afresh.submit(batch.submission, party), now=NOW)
    assert outbox.store.refused() == []
    assert [entry[0] for entry in logged(afresh)] == [made]
    batcher = TraceBatcher(lambda now: party.signer)
    batcher.set_head(afresh.head_of(party).head)
    batcher.add(tool("refund", chain, n=2), chain=chain, now=NOW)
    first = batcher.next_batch(NOW)
    assert first is not None
    batcher.answered(afresh.submit(first.submission, party))
    again = _begun_afresh(service, tmp_path / "again.db")
    queued = batcher.add(tool("refund", chain, n=3), chain=chain, now=NOW)
    for _ in range(4):
        sent = batcher.next_batch(NOW)
        if sent is None:
            break
        batcher.answered(again.submit(sent.submission, party))
    assert queued.result() == 0
