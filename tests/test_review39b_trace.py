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
2. Review 38b, trace 1 made an export's verification skip a version 1 link its lines do not
   settle, a resolution's escalation check with it, and counted the signer's own record under
   the id only before the link. Its own record after the link settles it as well (ids are
   per agent: none of its own is before it): another agent's record before it present is
   the one named (or the link is ambiguous, refused either way), and, no record before it,
   its own after it is. An exporter of a re-signed log holding a forged resolution left out
   one unrelated line before it (after it, for a forward link) and the export verified,
   though the lines present show the forgery. Now `_settled` counts it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from tests.test_review27t_collect import _batch, _collector
from tests.test_review34g_trace import _export, _insert
from tests.test_review36e_trace import _as_v1
from troth import limits
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import verify_log
from troth.trace.export import verify_bundle, verify_export
from troth.trace.record import Decision, Kind, Links
from troth.trace.signing import RecordContent, open_envelope, sign_record


def test_a_clock_set_back_leaves_members_proves_limited_not_refused(tmp_path: Path) -> None:
    """Trace 1: the node's clock runs ahead while a checkpoint is signed (an
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

    skew = limits.MAX_CLOCK_SKEW_SECONDS  # (an hour ahead before review 66h: the log now
    # refuses records dated more than the skew before its newest checkpoint, BACKDATED)
    clock.advance(skew)
    ahead = log.checkpoint()  # of the empty log, dated the skew ahead
    clock.advance(-skew + 60)  # set right, a minute later
    now = clock.now()
    assert ahead.time == now - 60 + skew
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


def _unsettled_log(tmp_path: Path) -> tuple[list[bytes], str]:
    """A log an operator re-signed (records written into its file, as review 34g, trace 4):
    0, D's step; 1, A's escalation asking C; 2, M's version 1 resolution naming the
    escalation's id alone (M was not asked: the log would refuse it at append); 3, M's own
    step under that id, after it. Its export's lines, and the resolution's id."""
    clock, owner = FixedClock(NOW), Held()
    d, a, c, m = Held(), Held(), Held(), Held()
    log = open_log(tmp_path / "trace.db", clock, owner)
    recorder(log, d, clock).record(tool_call())
    asked = recorder(log, a, clock).escalate(c.identifier, question="refund 5000?")
    content = RecordContent(
        Kind.RESOLUTION,
        values={"inputs": "nothing", "reasoning": "approved"},
        decision=Decision("approved"),
        links=Links(parent=asked.record, parent_agent=a.identifier),
    )
    forged = _as_v1(m, sign_record(m.signer(NOW), content, seq=0, prev=None, time=NOW))
    step = RecordContent(Kind.TOOL_INVOCATION, values={"result": "x"}, id=asked.record)
    own = sign_record(m.signer(NOW), step, seq=1, prev=forged.hash, time=NOW)
    log.close()
    _insert(log, 2, forged)
    _insert(log, 3, own)
    resigned = open_log(tmp_path / "trace.db", clock, owner)
    with pytest.raises(TraceError) as whole:
        verify_log(resigned)
    assert whole.value.reason is TraceFailure.LINK_INVALID
    lines = _export(resigned)
    resigned.close()
    return lines, forged.record.id


def test_leaving_a_line_out_does_not_hide_a_forged_old_resolution(tmp_path: Path) -> None:
    """Trace 2: the whole export is refused (LINK_INVALID: escalated to C, resolved by M).
    Its lines of A's escalation, M's resolution and M's later step (D's step, before the
    resolution, left out) still show what the link names: M has its one record under the
    id after the resolution (ids are per agent), so none before it, and the escalation is
    before it: the link names the escalation, or is ambiguous (a record of another agent
    under the id among the lines left out). Either is refused. Was a strict xfail until
    `_settled` counted the signer's own record after the link."""
    lines, forged = _unsettled_log(tmp_path)
    with pytest.raises(TraceError) as whole:
        verify_export(lines)
    assert whole.value.reason is TraceFailure.LINK_INVALID
    assert whole.value.record == forged
    for kept in (lines[1:], [lines[3], lines[2], lines[1]]):
        with pytest.raises(TraceError) as caught:
            verify_export(kept)
        assert caught.value.reason is TraceFailure.LINK_INVALID
        assert caught.value.record == forged
        assert "resolved by" in caught.value.detail


def test_leaving_a_later_line_out_does_not_hide_a_forged_forward_link(tmp_path: Path) -> None:
    """Trace 2, a forward link: M's version 1 resolution (0) names an id no record holds
    before it, and M's own step under that id follows (1): the link names that step (the
    signer's own after it comes first), no escalation, whatever lines after it are left
    out, so an export leaving out D's later step (2) is refused as the whole is. Was a
    strict xfail until `_settled` counted the signer's own record after the link."""
    clock, owner = FixedClock(NOW), Held()
    d, m = Held(), Held()
    log = open_log(tmp_path / "trace.db", clock, owner)
    named = sign_record(d.signer(NOW), tool_call(), seq=0, prev=None, time=NOW).record.id
    content = RecordContent(
        Kind.RESOLUTION,
        values={"inputs": "nothing", "reasoning": "approved"},
        decision=Decision("approved"),
        links=Links(parent=named),
    )
    forged = _as_v1(m, sign_record(m.signer(NOW), content, seq=0, prev=None, time=NOW))
    step = RecordContent(Kind.TOOL_INVOCATION, values={"result": "x"}, id=named)
    own = sign_record(m.signer(NOW), step, seq=1, prev=forged.hash, time=NOW)
    later = sign_record(d.signer(NOW), tool_call(), seq=0, prev=None, time=NOW)
    log.close()
    for index, record in enumerate((forged, own, later)):
        _insert(log, index, record)
    resigned = open_log(tmp_path / "trace.db", clock, owner)
    with pytest.raises(TraceError) as whole:
        verify_log(resigned)
    assert whole.value.reason is TraceFailure.LINK_INVALID
    lines = _export(resigned)
    for kept in (lines, lines[:2]):
        with pytest.raises(TraceError) as caught:
            verify_export(kept)
        assert caught.value.reason is TraceFailure.LINK_INVALID
        assert caught.value.record == forged.record.id
