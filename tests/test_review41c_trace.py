"""Review 41c, traces: attacks on review 40b's member prove limit (`TraceCollector`, a prove
dated before the last checkpoint signed for a member refused; docs/traces.md). Refuted, pinned:
the limit is the log's, not a member's, and a checkpoint one member's prove signs covers every
record the log holds then, so one member proving as fast as the limit lets it, or a request
of another dated before its last (answered out of order), refuses nobody's proof for longer
than the limit's second.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.parties import Party
from tests.test_review27t_collect import _batch, _collector
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace.collect import TraceCollector
from troth.trace.export import verify_bundle
from troth.trace.record import Kind
from troth.trace.signing import RecordContent, open_envelope


def _submitted(collector: TraceCollector, member: Party, now: int) -> str:
    submission = _batch(collector, member.signer, RecordContent(Kind.TOOL_INVOCATION))
    (result,) = collector.submit(submission, submitter=None, now=now).results
    assert result.delivered, result.detail
    return open_envelope(submission.records[0].envelope)[0].id


def test_one_members_proves_lock_no_other_member_out(tmp_path: Path) -> None:
    """Support proves a record each second (a checkpoint each); admin's record, submitted in
    the second support's checkpoint was signed, is refused then ("ask again"), and proved the
    next second whoever asks first: support's next checkpoint covers it. A request of
    admin's answered after support's later one (dated a second before it: "the clock set
    back", as the collector sees it) proves a covered record all the same."""
    world, log, collector = _collector(tmp_path)
    support, admin = world.support, world.admin
    clock = log.clock
    assert isinstance(clock, FixedClock)
    now = clock.now()
    first = _submitted(collector, support, now)
    verify_bundle(collector.prove(first, requester=support.identifier, now=now))
    theirs = _submitted(collector, admin, now)
    with pytest.raises(TraceError) as refused:
        collector.prove(theirs, requester=admin.identifier, now=now)
    assert refused.value.reason is TraceFailure.OVER_LIMIT
    assert "ask again" in str(refused.value)
    second = _submitted(collector, support, now + 1)
    verify_bundle(collector.prove(second, requester=support.identifier, now=now + 2))
    verify_bundle(collector.prove(theirs, requester=admin.identifier, now=now + 1))
    assert len(log.checkpoints()) == 2
