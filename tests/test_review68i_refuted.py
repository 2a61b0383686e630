"""Review 68i: attacks on the wait for a log whose clock ran ahead (area: clock) that did not
work. Each test names the defence it pins.

- the operator, the log's clock put right, signs a checkpoint again to lower the floor the
  ahead one set: the log returns the ahead checkpoint (nothing new to sign: every honest record
  is refused BACKDATED), so no checkpoint dated before it is made and its records stay held to
  it (`TraceLog.checkpoint` never dates one before an older one).

(The floor itself stays one while records wait: each is refused BACKDATED at append until the
log's time is past it, and the log they end up in verifies: tests/test_review68i_clock.py,
clock 1; a record written after the ahead checkpoint: tests/test_review68e_refuted.py.)
"""

from __future__ import annotations

from tests.test_review68i_clock import _ahead_then_right, _send
from tests.test_trace_service import NOW, F, Service, service, tool  # noqa: F401 - a fixture
from troth.trace.batcher import TraceBatcher


def test_signing_again_after_the_clock_is_put_right_does_not_lower_the_floor(
    service: Service,  # noqa: F811
) -> None:
    """The ahead checkpoint, then the clock put right: an honest record is refused BACKDATED,
    a checkpoint signed now is the ahead one (same size, same time), and the record is
    refused again after it."""
    party = service.world.support
    floor = _ahead_then_right(service)
    batcher = TraceBatcher(lambda now: party.signer)
    batcher.set_head(None)
    batcher.add(tool("refund"), now=NOW)
    for _ in range(2):
        batch = batcher.next_batch(NOW)
        assert batch is not None
        receipts = _send(service, batch.submission, party)
        assert receipts.results[0].reason is F.BACKDATED
        again = service.log.checkpoint()
        assert (again.size, again.time) == (0, floor)
        batcher.answered(receipts)
        if not batcher.pending():
            break
