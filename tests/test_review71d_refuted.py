"""Review 71d (area: outbox): attacks tried on the outbox's signing again at a rotation and the
collector's ALREADY answer that did not work, kept as passing tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_review47i_collector import _batch
from tests.test_review47l_windows import EARLY
from tests.test_review69a_outbox import _node_agent
from tests.test_review71d_outbox import Logged
from tests.test_trace_service import NOW, F
from troth import limits
from troth.trace.signing import open_envelope
from troth.trace.submit import Status


def test_a_compromised_rotation_is_never_refused_by_the_resigning_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried: keep a compromised key current by queueing more rows than a rotation signs again
    (an unreachable trace service, or a writer of node.db): the bound at 0, two rows queued,
    a `--compromised` rotation still commits (it signs none again: both set aside)."""
    monkeypatch.setattr(limits, "MAX_ROTATION_RESIGNED_RECORDS", 0, raising=False)
    node, outbox = _node_agent(tmp_path)
    try:
        agent = outbox.identifier.digest
        before = node.identities.get("agent", now=NOW + 5).identity.change_count
        node.identities.rotate("agent", now=NOW + 10, compromised=True)
        assert node.identities.get("agent", now=NOW + 20).identity.change_count > before
        assert outbox.store.first(agent, 10) == []
        assert len(outbox.store.refused(agent=agent, limit=10)) == 2
    finally:
        outbox.close()
        node.close()


def test_a_logged_record_signed_again_at_another_records_seq_is_answered_its_own_index(
    tmp_path: Path,
) -> None:
    """Tried: have the log acknowledge its record X at the place of its next record Y (X
    signed again by the agent's newest key at Y's seq and prev): answered ALREADY with X's
    own index, nothing appended, Y's copy as it was."""
    logged = Logged(tmp_path)
    try:
        newest = logged.agent.signer(EARLY + 20)
        (later,) = _batch(logged.collector, newest, EARLY + 20).records
        assert [r.status for r in logged.send(later, signer=newest)] == [Status.APPENDED]
        y = open_envelope(later.envelope)[0]
        x = logged.again(newest, logged.submission.records[0], at=y)
        (answer,) = logged.send(x, signer=newest)
        assert (answer.status, answer.index) == (Status.ALREADY, logged.first.index)
        assert logged.collector.log.size() == 2
        assert logged.collector.log.find(y.id, y.agent).envelope == later.envelope
    finally:
        logged.collector.log.close()


def test_a_thiefs_batch_of_a_resend_and_a_new_record_appends_nothing(tmp_path: Path) -> None:
    """Tried: slip a new record of the retired key's thief (chained on the log's head, dated
    before the rotation) into the log behind a resend, byte for byte, of the log's record
    that key signed, under the agent's current history: the resend answered ALREADY, the new
    record refused ATTESTATION_STALE, nothing appended."""
    logged = Logged(tmp_path)
    try:
        (new,) = _batch(logged.collector, logged.stolen, EARLY + 5).records
        results = logged.send(logged.submission.records[0], new)
        assert [(r.status, r.reason) for r in results] == [
            (Status.ALREADY, None),
            (Status.REFUSED, F.ATTESTATION_STALE),
        ]
        assert logged.collector.log.size() == 1
    finally:
        logged.collector.log.close()


def test_the_same_record_twice_in_one_batch_is_appended_once(tmp_path: Path) -> None:
    """Tried: append a record twice by sending it twice, byte for byte, in one batch:
    appended, then answered ALREADY at the same index; the log holds it once."""
    logged = Logged(tmp_path)
    try:
        newest = logged.agent.signer(EARLY + 20)
        (item,) = _batch(logged.collector, newest, EARLY + 20).records
        first, second = logged.send(item, item, signer=newest)
        assert (first.status, second.status) == (Status.APPENDED, Status.ALREADY)
        assert first.index == second.index
        assert logged.collector.log.size() == 2
    finally:
        logged.collector.log.close()
