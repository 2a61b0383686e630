"""Review 49j, resolutions: a resolution is a human's decision, signed by the human's own
identity (issue #13; docs/formats.md, "Decision traces").

1. An agent that escalated, asking no one (`escalation.to` left out: only the agent signs its
   escalation) or asking itself, and then resolved its own escalation: the log appended the
   resolution and `verify_log` and an export's verification found nothing, so an agent's own
   "approved" read as the human decision it escalated for. A resolution signed by the agent
   whose escalation it answers is refused (`linked record missing or of the wrong kind`), at
   append and by every verification.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, open_log, recorder
from tests.test_review34g_trace import _insert
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import TraceLog, verify_log
from troth.trace.export import export_jsonl, verify_export
from troth.trace.record import Decision, Kind, Links
from troth.trace.signing import RecordContent, sign_record

_ID = "0123456789abcdef0123456789abcdef"


def _escalation(to: Held | None) -> RecordContent:
    return RecordContent(
        Kind.ESCALATION,
        values={"inputs": "refund 5000?"},
        escalation_to=None if to is None else to.identifier,
        id=_ID,
    )


def _resolution(agent: Held) -> RecordContent:
    return RecordContent(
        Kind.RESOLUTION,
        values={"inputs": "nothing", "reasoning": "approved"},
        decision=Decision("approved"),
        links=Links(parent=_ID, parent_agent=agent.identifier),
    )


def _export(log: TraceLog) -> list[bytes]:
    out = io.StringIO()
    export_jsonl(log, out)
    return [line.encode() for line in out.getvalue().splitlines()]


@pytest.mark.parametrize("asked", ["no one", "itself"])
def test_an_agent_resolving_its_own_escalation_is_refused(tmp_path: Path, asked: str) -> None:
    """1: at append; and in a log its operator wrote (a re-signed tree), by `verify_log` and an
    export's verification, at the resolution."""
    clock, owner, agent = FixedClock(NOW), Held(), Held()
    log = open_log(tmp_path / "trace.db", clock, owner)
    own = recorder(log, agent, clock)
    own.record(_escalation(None if asked == "no one" else agent))
    with pytest.raises(TraceError) as appended:
        own.record(_resolution(agent))
    assert appended.value.reason is TraceFailure.LINK_INVALID
    log.close()
    head = open_log(tmp_path / "trace.db", clock, owner)
    prev = head.head(agent.identifier)
    head.close()
    assert prev is not None
    forged = sign_record(agent.signer(NOW), _resolution(agent), seq=1, prev=prev[1], time=NOW)
    _insert(log, 1, forged)
    reopened = open_log(tmp_path / "trace.db", clock, owner)
    with pytest.raises(TraceError) as whole:
        verify_log(reopened)
    assert (whole.value.reason, whole.value.index) == (TraceFailure.LINK_INVALID, 1)
    with pytest.raises(TraceError) as lines:
        verify_export(_export(reopened))
    assert (lines.value.reason, lines.value.index) == (TraceFailure.LINK_INVALID, 1)
