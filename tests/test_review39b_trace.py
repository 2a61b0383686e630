"""Review 39b, traces: adversarial re-review of review 38b's trace fixes (an export's version
1 links read only where its lines settle them; a member's `prove` signing a checkpoint at
most every TRACE_MEMBER_CHECKPOINT_SECONDS).

1. The member's limit measured the time since the newest checkpoint by the checkpoint's own
   time, and a checkpoint is never dated before an older one (`TraceLog.checkpoint`): one
   signed while the node's clock was an hour ahead (then corrected) dates every later one an
   hour ahead, so for that hour every member's `prove` of a record no checkpoint covered was
   refused `over a limit` ("ask again"), however long since a checkpoint was signed. Now
   such a checkpoint's time is not used: the collector measures from the last checkpoint it
   signed for a member, by the times the proofs were asked at.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_review27t_collect import _batch, _collector
from troth import limits
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace.export import verify_bundle
from troth.trace.record import Kind
from troth.trace.signing import RecordContent, open_envelope


def test_a_clock_set_back_leaves_members_proves_limited_not_refused(tmp_path: Path) -> None:
    """Trace 1: the node's clock runs an hour ahead while a checkpoint is signed (an
    operator's `troth trace checkpoint`), then is set right. A member submits a record and
    asks for its proof a minute later: a checkpoint is signed (dated no earlier than the
    last) and the proof served; a second one within TRACE_MEMBER_CHECKPOINT_SECONDS is
    still refused `over a limit`, and one after it served: the limit still holds, by the
    times the proves were asked at. Was a strict xfail until `TraceCollector` measured the
    limit, when the newest checkpoint is dated after the request, from the last proof it
    signed one for."""
    world, log, collector = _collector(tmp_path)
    member = world.support
    clock = log.clock
    assert isinstance(clock, FixedClock)

    def submitted(now: int) -> str:
        submission = _batch(collector, member.signer, RecordContent(Kind.TOOL_INVOCATION))
        (result,) = collector.submit(submission, submitter=None, now=now).results
        assert result.delivered, result.detail
        return open_envelope(submission.records[0].envelope)[0].id

    clock.advance(3600)
    ahead = log.checkpoint()  # of the empty log, dated an hour ahead
    clock.advance(-3600 + 60)  # set right, a minute later
    now = clock.now()
    assert ahead.time == now - 60 + 3600
    first = submitted(now)
    assert verify_bundle(collector.prove(first, requester=member.identifier, now=now)).index == 0
    second = submitted(now)
    with pytest.raises(TraceError) as refused:
        collector.prove(second, requester=member.identifier, now=now)
    assert refused.value.reason is TraceFailure.OVER_LIMIT
    assert "TRACE_MEMBER_CHECKPOINT_SECONDS" in refused.value.detail
    later = now + limits.TRACE_MEMBER_CHECKPOINT_SECONDS
    assert verify_bundle(collector.prove(second, requester=member.identifier, now=later)).index == 1
    assert len(log.checkpoints()) == 3
