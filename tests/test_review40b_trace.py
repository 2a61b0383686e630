"""Review 40b, traces: attacks on review 39b's trace fixes (a member's prove limit measured,
when the newest checkpoint is dated after the request, from the last one signed for a
member; an export's version 1 link settled by the signer's own record after it).
"""

from __future__ import annotations

from pathlib import Path

from tests.test_review27t_collect import _batch, _collector
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace.export import verify_bundle
from troth.trace.record import Kind
from troth.trace.signing import RecordContent, open_envelope


def test_a_clock_stepped_back_at_each_prove_signs_no_checkpoint_for_each(tmp_path: Path) -> None:
    """Review 40b, trace 1. Review 39b measured a member's prove limit, when the newest
    checkpoint is dated after the request, from the last checkpoint signed for a member,
    but only when the request was dated at or after it: one dated before it (the clock set
    back again) was not limited at all. A node whose clock steps back a second before each
    request (a flapping clock source, a spoofed time server) signed a checkpoint for every
    member's prove, each kept and verified, a signature each, by every `troth trace verify`
    (review 38b, trace 3); before review 39b they were refused until the clock caught up.
    Here eight proves, the clock a second back at each: eight checkpoints.

    Was a strict xfail until `TraceCollector` refused a member's prove dated before the last
    checkpoint signed for a member, measuring the limit from it.
    """
    world, log, collector = _collector(tmp_path)
    member = world.support
    clock = log.clock
    assert isinstance(clock, FixedClock)
    now = clock.now()
    reasons: list[TraceFailure | None] = []
    for i in range(8):  # each record submitted, then proved: no checkpoint covers it yet
        submission = _batch(collector, member.signer, RecordContent(Kind.TOOL_INVOCATION))
        (result,) = collector.submit(submission, submitter=None, now=now - i).results
        assert result.delivered, result.detail
        record_id = open_envelope(submission.records[0].envelope)[0].id
        try:
            verify_bundle(collector.prove(record_id, requester=member.identifier, now=now - i))
            reasons.append(None)
        except TraceError as exc:
            reasons.append(exc.reason)
    assert reasons == [None] + [TraceFailure.OVER_LIMIT] * 7
    assert len(log.checkpoints()) == 1
