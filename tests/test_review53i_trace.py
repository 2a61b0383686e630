"""Review 53i: signed traces (issue #13), attacked afresh.

1. (resolutions) A resolution names its escalation by (agent, id) alone: its signed bytes hold
   nothing of the escalation's content. The agent that escalated signs another escalation
   under the same id into another log (ids are the signer's own choice), and that log's
   operator (a local caller submits anyone's records) appends the human's resolution there,
   within the log's window: the human "approved" a question it never saw, and the log and
   its verification took it. Now a resolution names its escalation's record hash
   (`links.parent_hash`, a version 3 record: docs/formats.md, "Trace records"), which the log
   at append, `verify_log` and an export's verification check (`check_resolution`); records
   without it (version 2, and every other kind) are as before.

It was a strict xfail, seen failing for its reason, until its fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, open_log, recorder
from tests.test_review34g_trace import _insert
from tests.test_review49j_exports import _export
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import Decision, Kind, Links, RecordContent
from troth.trace.export import verify_export
from troth.trace.record import HASHED_VERSION, VERSION, TraceRecord, resolution_id
from troth.trace.record_decode import check_resolution
from troth.trace.signing import open_envelope, sign_record, verify_envelope
from troth.trace.verify import verify_log


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


def test_a_resolution_names_its_escalations_hash_and_verifies(tmp_path: Path) -> None:
    """`resolve` writes a version 3 record naming the escalation's record hash; the log and
    `verify_log` take it; every other record stays version 2."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    agent, human = Held(), Held()
    asked = recorder(log, agent, clock).escalate(human.identifier, question="refund 10?")
    answer = recorder(log, human, clock).resolve(
        asked.record, of=agent.identifier, outcome="approved", considered="10", reasoning="ok"
    )
    escalation = open_envelope(log.find(asked.record, agent.identifier).envelope)[0]
    resolution = open_envelope(log.find(answer.record, human.identifier).envelope)[0]
    assert escalation.version == VERSION
    assert resolution.version == HASHED_VERSION
    assert resolution.links.parent_hash == asked.hash
    assert verify_log(log).size == 2


def test_a_resolution_without_the_hash_is_read_as_before(tmp_path: Path) -> None:
    """A version 2 resolution (no hash: signed before review 53i) is appended and verifies."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    agent, human = Held(), Held()
    asked = recorder(log, agent, clock).escalate(human.identifier, question="refund 10?")
    old = RecordContent(
        Kind.RESOLUTION,
        values={"inputs": "10", "reasoning": "ok"},
        decision=Decision("approved"),
        links=Links(parent=asked.record, parent_agent=agent.identifier),
    )
    recorder(log, human, clock).record(old)
    assert verify_log(log).size == 2


def test_the_hash_is_checked_by_the_offline_rule() -> None:
    """`check_resolution` (the log's, `verify_log`'s and an export's check): a resolution whose
    hash is not its escalation's is refused; its own escalation's passes."""
    agent, human = Held(), Held()
    escalation = TraceRecord(
        "0" * 31 + "1",
        agent.identifier,
        "a" * 64,
        0,
        None,
        NOW,
        Kind.ESCALATION,
        escalation_to=human.identifier,
    )
    links = Links(parent=escalation.id, parent_agent=agent.identifier, parent_hash=b"\x01" * 32)
    resolution = TraceRecord(
        resolution_id(b"\x01" * 32),  # a resolution's id is its escalation's (review 53l)
        human.identifier,
        "b" * 64,
        0,
        None,
        NOW,
        Kind.RESOLUTION,
        decision=Decision("approved"),
        links=links,
        version=HASHED_VERSION,
    )
    check_resolution(resolution, (escalation, b"\x01" * 32))
    with pytest.raises(TraceError) as refused:
        check_resolution(resolution, (escalation, b"\x02" * 32))
    assert refused.value.reason is TraceFailure.LINK_INVALID


@pytest.mark.parametrize("case", ["v2 with hash", "v3 without", "v3 not a resolution"])
def test_one_encoding_per_version(case: str) -> None:
    """A parent hash is a resolution's, in version 3 only; version 3 always has one."""
    agent = Held()
    hashed = Links(parent="0" * 32, parent_hash=b"\x01" * 32)
    kind, links, version = {
        "v2 with hash": (Kind.RESOLUTION, hashed, VERSION),
        "v3 without": (Kind.RESOLUTION, Links(parent="0" * 32), HASHED_VERSION),
        "v3 not a resolution": (Kind.DECISION, hashed, HASHED_VERSION),
    }[case]
    with pytest.raises(ValueError, match="parent hash"):
        TraceRecord(
            "0" * 32,
            agent.identifier,
            "a" * 64,
            0,
            None,
            NOW,
            kind,
            links=links,
            version=version,
        )


def test_verify_log_and_an_export_refuse_a_resolution_of_another_escalations_hash(
    tmp_path: Path,
) -> None:
    """The log's operator writes H's answer to another question (its hash is another
    escalation's under the id) after A's escalation, the tree re-signed: `verify_log` and the
    export's verification refuse it at the resolution, whatever the order of the lines."""
    clock, owner, agent, human = FixedClock(NOW), Held(), Held(), Held()
    log = open_log(tmp_path / "trace.db", clock, owner)
    asked = recorder(log, agent, clock).escalate(human.identifier, question={"refund": 10})
    log.close()
    other = sign_record(
        agent.signer(NOW),
        RecordContent(
            Kind.ESCALATION,
            values={"inputs": {"refund": 10_000}},
            escalation_to=human.identifier,
            id=asked.record,
        ),
        seq=0,
        prev=None,
        time=NOW,
    )
    links = Links(parent=asked.record, parent_agent=agent.identifier, parent_hash=other.hash)
    answer = RecordContent(
        Kind.RESOLUTION,
        values={"inputs": "10,000", "reasoning": "ok"},
        decision=Decision("approved"),
        links=links,
    )
    _insert(log, 1, sign_record(human.signer(NOW), answer, seq=0, prev=None, time=NOW))
    log = open_log(tmp_path / "trace.db", clock, owner)
    with pytest.raises(TraceError) as whole:
        verify_log(log)
    assert (whole.value.reason, whole.value.index) == (TraceFailure.LINK_INVALID, 1)
    lines = _export(log)
    for order in (lines, lines[::-1]):
        with pytest.raises(TraceError) as caught:
            verify_export(order)
        assert (caught.value.reason, caught.value.index) == (TraceFailure.LINK_INVALID, 1)
