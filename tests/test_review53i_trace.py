"""Review 53i: signed traces (issue #13), attacked afresh.

1. (resolutions) A resolution names its escalation by (agent, id) alone: its signed bytes hold
   nothing of the escalation's content. The agent that escalated signs another escalation
   under the same id into another log (ids are the signer's own choice), and that log's
   operator (a local caller submits anyone's records) appends the human's resolution there,
   within the log's window: the human "approved" a question it never saw, and the log and
   its verification take it. Left as a strict xfail: closing it needs the resolution to
   commit to the escalation's record hash, a new member in the record format (a version 3
   record, golden vectors, every verifier's resolution check).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, open_log, recorder
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import Kind, RecordContent
from troth.trace.signing import verify_envelope


@pytest.mark.xfail(
    strict=True,
    reason="review 53i, resolutions 1: a resolution commits to its escalation by id alone, so "
    "it is replayed onto another escalation under that id in another log (needs a format "
    "change: the escalation's record hash in the resolution)",
)
def test_a_resolution_replayed_onto_another_escalation_under_its_id_is_refused(
    tmp_path: Path,
) -> None:
    """A asks H about a refund of 10 in log 1; H approves it. A signs an escalation under the
    same id asking about 10,000 into log 2, whose operator appends H's approval after it: log 2
    must refuse the approval, which answered another question."""
    clock = FixedClock(NOW)
    agent, human = Held(), Held()
    first, second = open_log(tmp_path / "one.db", clock), open_log(tmp_path / "two.db", clock)
    asked = recorder(first, agent, clock).escalate(human.identifier, question={"refund": 10})
    answer = recorder(first, human, clock).resolve(
        asked.record, of=agent.identifier, outcome="approved", considered="10", reasoning="ok"
    )
    forged = RecordContent(
        Kind.ESCALATION,
        values={"inputs": {"refund": 10_000}},
        escalation_to=human.identifier,
        id=asked.record,
    )
    recorder(second, agent, clock).record(forged)
    envelope = first.find(answer.record, human.identifier).envelope
    replayed = verify_envelope(
        envelope, signer=human.identity, attestation=human.signer(NOW).attestation
    )
    with pytest.raises(TraceError) as refused:
        second.append(replayed)
    assert refused.value.reason is TraceFailure.LINK_INVALID
