"""Review 69a (area: outbox): attacks on the trace outbox's hold that did not work.

- A record of one agent that waits out a clock (made while the agent's clock ran a day ahead:
  `record time outside the log's window` past its attempts, `held_back`, kept in
  `trace_outbox_held`) holds back only that agent's records: another agent's outbox in the same
  node.db sends and delivers its own, its status holds nothing back, and the first agent's
  hold is kept as it was (the rows and the hold are read per agent).
"""

from __future__ import annotations

from pathlib import Path

from tests.test_review68i_clock import DAY, _send
from tests.test_trace_service import NOW, F, Service, service, tool  # noqa: F401 - a fixture
from troth.storage import SqliteDatabase
from troth.trace.outbox import TraceOutbox


def test_one_agents_wait_holds_back_no_other_agents_records(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The support agent's record waits out its clock; the sub agent's, queued in the same
    node.db after it, is delivered at once."""
    world = service.world
    db = SqliteDatabase(tmp_path / "node.db")
    waiting = TraceOutbox(db, world.support.identifier, lambda now: world.support.signer)
    other = TraceOutbox(db, world.sub.identifier, lambda now: world.sub.signer)
    try:
        waiting.add(tool("refund"), now=NOW + DAY)
        for _ in range(4):
            batch = waiting.next_batch(NOW + DAY)
            assert batch is not None
            receipts = _send(service, batch.submission, world.support)
            assert receipts.results[0].reason is F.TIME_OUT_OF_RANGE
            waiting.answered(receipts, now=NOW + DAY)
        held = waiting.status()["held_back"]
        assert held is not None
        queued = other.add(tool("lookup_order"), now=NOW + 1)
        batch = other.next_batch(NOW + 1)
        assert batch is not None
        assert len(batch.submission.records) == 1
        other.answered(_send(service, batch.submission, world.sub), now=NOW + 1)
        assert queued.result() == 0
        assert other.status()["held_back"] is None
        assert waiting.status()["held_back"] == held
        assert waiting.pending() == 1
    finally:
        waiting.close()
        other.close()
        db.close()
