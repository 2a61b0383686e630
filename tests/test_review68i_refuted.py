"""Review 68i: attacks on the wait for a log whose clock ran ahead (area: clock) that did not
work. Each test names the defence it pins.

- records waiting out a BACKDATED refusal fill the outbox: its bounds hold (the next `add` is
  refused OVER_LIMIT, so the agent stops), and none of the waiting records is dropped;
(The floor itself stays one while records wait: each is refused BACKDATED at append until the
log's time is past it, and the log they end up in verifies: tests/test_review68i_clock.py,
clock 1; a record written after the ahead checkpoint: tests/test_review68e_refuted.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_review68i_clock import _ahead_then_right, _send
from tests.test_trace_service import NOW, F, Service, service, tool  # noqa: F401 - a fixture
from troth.errors import TraceError
from troth.storage import SqliteDatabase
from troth.trace.outbox import TraceOutbox


def test_records_waiting_out_a_backdated_refusal_keep_the_outbox_bounded(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The outbox (here 3 records) full of records the log refuses BACKDATED: the next `add`
    is refused OVER_LIMIT; the three stay queued, none set aside, and the log holds none."""
    party = service.world.support
    _ahead_then_right(service)
    db = SqliteDatabase(tmp_path / "node.db")
    outbox = TraceOutbox(db, party.identifier, lambda now: party.signer, max_records=3)
    queued = [outbox.add(tool("refund", n=n), now=NOW) for n in range(3)]
    for _ in range(2):
        batch = outbox.next_batch(service.clock.now())
        assert batch is not None
        receipts = _send(service, batch.submission, party)
        assert receipts.results[0].reason is F.BACKDATED
        outbox.answered(receipts, now=service.clock.now())
    with pytest.raises(TraceError) as full:
        outbox.add(tool("refund", n=3), now=NOW)
    assert full.value.reason is F.OVER_LIMIT
    status = outbox.status()
    assert (status["queued"], status["refused"]) == (3, 0)
    assert not any(q.done for q in queued)
    assert service.head_of(party).head is None  # the log holds none of them
    outbox.close()
    db.close()
