"""Review 71d (area: outbox): a second review of the outbox's signing again at a rotation and
the collector's ALREADY answer (70b, 70o, 70s, 70x).

1. (signing then rolling back, low) A rotation with more than MAX_ROTATION_RESIGNED_RECORDS of
   the retired key's rows queued signed that many with the new key (up to 3 s of node.db's
   write lock, a token's signatures too) before it met one more and was refused, rolling all of
   it back (review 70b, outbox 3, knowingly left). Now it counts the agent's queued rows first
   (one COUNT, bounded at one past the limit, on the outbox's index) and refuses before any
   row is signed again.
2. (a retired key's resigning acknowledged under the current history, low) 70x fixed a log's
   record signed again by a retired key and sent under the signer's older history (`behind`).
   Sent under the signer's current history instead (public: the thief of the retired key, from
   a stolen backup of the agent's node.db, has it from any of the agent's channels), with the
   retired key's attestation (a change of that history) and dated before the rotation (where
   the key could sign), the record verified (`_verified` checks the key could sign at the
   record's time) and was answered ALREADY, though an append of that very record is refused
   ATTESTATION_STALE (the log appends only records of a key attested under the signer's
   current change). The collector's ALREADY answer to a record signed again now refuses a key
   of an older change as the log does (ATTESTATION_STALE).
3. (the same, through the log's REPLAYED, low) A record signed again by the retired key sent in
   the batch that appends the record (the same id twice in one batch, or a concurrent batch:
   the log's REPLAYED, checked before its ATTESTATION_STALE) was answered ALREADY by
   `_settle`, which matched `signed_again` on the record's id and content only. It now asks
   what (2) asks: a record signed again by a key of the signer's current change.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.support.traces import Held
from tests.test_identity_observe import observer
from tests.test_review47i_collector import _batch, _long_collector
from tests.test_review47l_windows import EARLY
from tests.test_review69a_outbox import _node_agent
from tests.test_review70s_collector import resent
from tests.test_trace_service import NOW, F
from troth import limits
from troth.clock import FixedClock
from troth.errors import TraceError
from troth.trace.signing import open_envelope, resign_record
from troth.trace.submit import Status, SubmittedRecord
from troth.vault.base import KeyHandle


def _signatures_of_refused_rotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bound: int
) -> int:
    """How many signatures the node's vault made in a rotation of the agent (two rows queued)
    refused OVER_LIMIT with MAX_ROTATION_RESIGNED_RECORDS at `bound`."""
    monkeypatch.setattr(limits, "MAX_ROTATION_RESIGNED_RECORDS", bound, raising=False)
    node, outbox = _node_agent(tmp_path)
    signed: list[bytes] = []
    vault_type = type(node.vault)
    real = vault_type.sign

    def counted(self: object, handle: KeyHandle, data: bytes) -> bytes:
        signed.append(data)
        return real(self, handle, data)  # type: ignore[arg-type]

    try:
        with monkeypatch.context() as patch:
            patch.setattr(vault_type, "sign", counted)
            with pytest.raises(TraceError) as refused:
                node.identities.rotate("agent", now=NOW + 10)
        assert refused.value.reason is F.OVER_LIMIT
        assert node.identities.get("agent", now=NOW + 20).identity.change_count == 1
        return len(signed)
    finally:
        outbox.close()
        node.close()


def test_a_rotation_over_the_bound_signs_no_row_before_it_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """71d outbox 1: two rows queued, the bound at 1: the refused rotation makes no more
    signatures than one refused at a bound of 0 (before any row): none of a row again."""
    first = _signatures_of_refused_rotation(tmp_path / "one", monkeypatch, 1)
    none = _signatures_of_refused_rotation(tmp_path / "zero", monkeypatch, 0)
    assert first == none


def test_a_logged_record_signed_again_by_a_retired_key_under_the_current_history_is_refused(
    tmp_path: Path,
) -> None:
    """71d outbox 2: the agent's record is in the log; the agent rotates (the node's store
    learns it); the thief of the retired key signs the log's record again, dated before the
    rotation, and sends it under the agent's current history with the retired key's
    attestation: refused ATTESTATION_STALE, as an append of it is, not answered ALREADY."""
    agent = Held()
    clock = FixedClock(EARLY)
    collector = _long_collector(tmp_path / "trace.db", lambda _c, _h: True, clock)
    store = observer(tmp_path / "node.db")
    collector._observe = store.observe
    stolen = agent.signer(EARLY)
    submission = _batch(collector, stolen, EARLY)
    (first,) = collector.submit(submission, submitter=None, now=EARLY).results
    assert first.status is Status.APPENDED, first
    agent.rotate(EARLY + 10)
    store.observe(agent.identity)
    item = submission.records[0]
    record = open_envelope(item.envelope)[0]
    again = resign_record(
        stolen, record, item.disclosures, seq=record.seq, prev=record.prev, time=EARLY + 1
    )
    thiefs = resent(submission, again.record, open_envelope(again.envelope)[2])
    thiefs = dataclasses.replace(thiefs, history=agent.identity.history)
    (answer,) = collector.submit(thiefs, submitter=None, now=EARLY + 20).results
    assert (answer.status, answer.reason) == (Status.REFUSED, F.ATTESTATION_STALE), answer
    assert collector.log.size() == 1
    collector.log.close()


def test_a_record_and_its_retired_keys_resigning_in_one_batch_is_appended_once(
    tmp_path: Path,
) -> None:
    """71d outbox 3: the agent rotated; one batch under its current history holds a record
    signed by its new key and the same record signed again by the retired key (dated before
    the rotation): the first appended, the second refused ATTESTATION_STALE, not ALREADY."""
    agent = Held()
    collector = _long_collector(tmp_path / "trace.db", lambda _c, _h: True, FixedClock(EARLY))
    stolen = agent.signer(EARLY)
    agent.rotate(EARLY + 10)
    newest = agent.signer(EARLY + 20)
    submission = _batch(collector, newest, EARLY + 20)
    item = submission.records[0]
    record = open_envelope(item.envelope)[0]
    again = resign_record(
        stolen, record, item.disclosures, seq=record.seq, prev=record.prev, time=EARLY + 1
    )
    both = dataclasses.replace(
        submission,
        records=(item, SubmittedRecord(again.envelope, item.disclosures)),
        attestations=(newest.attestation, stolen.attestation),
    )
    results = collector.submit(both, submitter=None, now=EARLY + 20).results
    assert [r.status for r in results] == [Status.APPENDED, Status.REFUSED], results
    assert results[1].reason is F.ATTESTATION_STALE
    assert collector.log.size() == 1
    collector.log.close()
