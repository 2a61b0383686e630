"""Review 55l, chains 1: review 55b (chains 1) made a client that took a chain for kept by the
service's log, and found it lost (`not sent (nor is it kept)`: the log restored, begun
afresh), forget the chain and send the record again with it. But every record of a batch
under that chain is refused so, not only the first: the first refusal made the client forget
the chain, and each later record's, finding it forgotten already, was taken for the record's
own failure and set aside, for good (an agent's every record is under its one chain: all but
the first of a batch lost, in the outbox and the in-memory batcher alike)."""

from __future__ import annotations

from pathlib import Path

from tests.test_review55b_head import _begun_afresh
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
from troth.trace.batcher import TraceBatcher
from troth.trace.outbox import TraceOutbox


def outbox_keeping_the_chain(service: Service, outboxes: Outboxes) -> TraceOutbox:  # noqa: F811
    """An outbox of the support party that delivered one record under its chain to `service`'s
    log: it takes the chain for kept (sends it no more)."""
    chain = service.world.support_chain
    outbox = outboxes.open()
    outbox.add(tool("refund", chain), chain=chain, now=NOW)
    assert outbox.claim()
    batch = outbox.next_batch(NOW)
    assert batch is not None
    outbox.answered(service.submit(batch.submission, service.world.support), now=NOW)
    return outbox


def test_chains1_every_record_of_a_batch_under_a_lost_chain_is_delivered(
    service: Service,  # noqa: F811
    outboxes: Outboxes,  # noqa: F811
    tmp_path: Path,
) -> None:
    party, chain = service.world.support, service.world.support_chain
    outbox = outbox_keeping_the_chain(service, outboxes)
    afresh = _begun_afresh(service, tmp_path / "afresh.db")
    made = [outbox.add(tool("refund", chain, n=n), chain=chain, now=NOW).record for n in (1, 2)]
    for _ in range(6):
        batch = outbox.next_batch(NOW)
        if batch is None:
            break
        outbox.answered(afresh.submit(batch.submission, party), now=NOW)
    assert [(r.record, r.reason) for r in outbox.store.refused()] == []
    assert [entry[0] for entry in logged(afresh)] == made


def test_chains1_a_batcher_delivers_every_record_under_a_lost_chain(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    party, chain = service.world.support, service.world.support_chain
    batcher = TraceBatcher(lambda now: party.signer)
    batcher.set_head(None)
    batcher.add(tool("refund", chain), chain=chain, now=NOW)
    first = batcher.next_batch(NOW)
    assert first is not None
    batcher.answered(service.submit(first.submission, party))  # the chain kept
    afresh = _begun_afresh(service, tmp_path / "afresh.db")
    queued = [batcher.add(tool("refund", chain, n=n), chain=chain, now=NOW) for n in (1, 2)]
    for _ in range(6):
        sent = batcher.next_batch(NOW)
        if sent is None:
            break
        batcher.answered(afresh.submit(sent.submission, party))
    assert [q.result() for q in queued] == [0, 1]
