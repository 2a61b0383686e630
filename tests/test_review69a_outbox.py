"""Review 69a (area: outbox): a second review of the trace outbox's hold (68i, 68r).

1. (head-of-line block, medium) A record made while the node's clock ran ahead (a day, a year:
   a bad clock at boot) is refused `record time outside the log's window`; once its attempts
   are spent it waits (WAITED_OUT, `held_back`), signed again each time it goes. But it was
   signed again dated when it was made (`max(made, now - SEND_LATE, floor)`), still ahead
   after the node's clock was put right: it, and every record of the agent after it, waited
   out the whole error (until real time reached that date), the outbox filling up and the
   agent stopping (OVER_LIMIT) meanwhile, although the docs say the fix is a clock. The
   durable outbox and the in-memory batcher alike. Now a record signed again is dated no
   later than when it is signed (`troth.trace.batcher.resign_time`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.test_review68i_clock import DAY, _send
from tests.test_trace_service import NOW, F, Service, service, tool  # noqa: F401 - a fixture
from troth.storage import SqliteDatabase
from troth.trace import verify_log
from troth.trace.batcher import TraceBatcher
from troth.trace.outbox import TraceOutbox


def _ahead_then_put_right(service: Service, batcher: Any) -> int:  # noqa: F811
    """A record made while the node's clock ran a day ahead, refused until it waits; a second
    one made after the clock was put right; both sent at the right time: how many of them
    the log took in 5 batches."""
    party = service.world.support
    batcher.add(tool("refund"), now=NOW + DAY)  # the node's clock a day ahead
    for _ in range(4):
        batch = batcher.next_batch(NOW + DAY)
        assert batch is not None
        receipts = _send(service, batch.submission, party)
        assert receipts.results[0].reason is F.TIME_OUT_OF_RANGE
        batcher.answered(receipts, now=NOW + DAY)
    assert batcher.held_back is not None  # it waits (68i, clock 5)
    batcher.add(tool("lookup"), now=NOW + 10)  # put right
    delivered = 0
    for step in range(1, 6):
        batch = batcher.next_batch(NOW + 10 * step)
        if batch is None:
            break
        receipts = _send(service, batch.submission, party)
        batcher.answered(receipts, now=NOW + 10 * step)
        delivered += sum(r.delivered for r in receipts.results)
    return delivered


def test_an_outbox_record_made_while_the_clock_ran_ahead_goes_once_it_is_put_right(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Outbox 1 (the durable outbox)."""
    party = service.world.support
    db = SqliteDatabase(tmp_path / "node.db")
    outbox = TraceOutbox(db, party.identifier, lambda now: party.signer)
    try:
        assert _ahead_then_put_right(service, outbox) == 2
        assert outbox.held_back is None
        assert outbox.pending() == 0
        assert verify_log(service.log).size == 2
    finally:
        outbox.close()
        db.close()


def test_a_queued_record_made_while_the_clock_ran_ahead_goes_once_it_is_put_right(
    service: Service,  # noqa: F811
) -> None:
    """Outbox 1 (the in-memory batcher)."""
    batcher = TraceBatcher(lambda now: service.world.support.signer)
    batcher.set_head(None)
    assert _ahead_then_put_right(service, batcher) == 2
    assert batcher.held_back is None
