"""Review 71d (area: outbox): a second review of the outbox's signing again at a rotation and
the collector's ALREADY answer (70b, 70o, 70s, 70x).

1. (signing then rolling back, low) A rotation with more than MAX_ROTATION_RESIGNED_RECORDS of
   the retired key's rows queued signed that many with the new key (up to 3 s of node.db's
   write lock, a token's signatures too) before it met one more and was refused, rolling all of
   it back (review 70b, outbox 3, knowingly left). Now it counts the agent's queued rows first
   (one COUNT, bounded at one past the limit, on the outbox's index) and refuses before any
   row is signed again. (Review 71g, outbox2 1: no longer refused; the rows past the bound are
   listed in a ticket, one signature, and signed again by the outbox.)
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
4. (a routine rotation held off by the trace service, low; fixed by review 71g, outbox2 1:
   the rest listed in a ticket the new key signs, signed again by the outbox) A trace service
   that stays unreachable (or a network that keeps the node from it) lets the agent's outbox
   fill past MAX_ROTATION_RESIGNED_RECORDS (4,096 records; the outbox holds 65,536), and then
   every routine rotation of the agent is refused OVER_LIMIT for as long as it stays so: the
   operator's only way to rotate is `--compromised`, which sets every queued record aside
   (kept in node.db, never sent: lost to the log). Not fixed here: signing the rows in steps
   needs the new key before the rotation's commit (signing staged rows, each step its own
   transaction, swapped in by the rotation's, or a rotation that sets aside only the rows past
   the bound, at the operator's word), a design of its own. The bound itself is sound (review
   70b, outbox 3), and a compromised rotation is never refused by it (test_review71d_refuted).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.support.traces import Held
from tests.test_identity_observe import observer
from tests.test_review47i_collector import _batch, _long_collector
from tests.test_review47l_windows import EARLY
from tests.test_review69a_outbox import _keys, _node_agent
from tests.test_trace_service import NOW, F
from troth import limits
from troth.clock import FixedClock
from troth.identity import Signer
from troth.trace.record import TraceRecord
from troth.trace.signing import open_envelope, resign_record
from troth.trace.submit import Status, SubmitResult, SubmittedRecord
from troth.vault.base import KeyHandle


def _signatures_of_rotation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bound: int) -> int:
    """How many signatures the node's vault made in a rotation of the agent (two rows queued)
    with MAX_ROTATION_RESIGNED_RECORDS at `bound` (it commits: review 71g, outbox2 1)."""
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
            node.identities.rotate("agent", now=NOW + 10)
        assert node.identities.get("agent", now=NOW + 20).identity.change_count == 2
        return len(signed)
    finally:
        outbox.close()
        node.close()


def test_a_rotation_over_the_bound_signs_no_more_than_the_bound_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """71d outbox 1 (as review 71g, outbox2 1 left it: a rotation over the bound is no longer
    refused): two rows queued, the bound at 1, the rotation makes one signature more than at a
    bound of 0 (one row signed again; the other listed in the ticket, one signature at both),
    not one per row queued."""
    first = _signatures_of_rotation(tmp_path / "one", monkeypatch, 1)
    none = _signatures_of_rotation(tmp_path / "zero", monkeypatch, 0)
    assert first == none + 1


class Logged:
    """An agent with one record in a trace log (appended at EARLY, signed by `stolen`, the key
    its rotation at EARLY + 10 retires: a thief's copy), then rotated, the node's store told
    (unless not `rotate`: the test rotates it)."""

    def __init__(self, tmp_path: Path, *, rotate: bool = True) -> None:
        self.agent = Held()
        clock = FixedClock(EARLY)
        self.collector = _long_collector(tmp_path / "trace.db", lambda _c, _h: True, clock)
        store = observer(tmp_path / "node.db")
        self.collector._observe = store.observe
        self.stolen = self.agent.signer(EARLY)
        self.submission = _batch(self.collector, self.stolen, EARLY)
        (self.first,) = self.collector.submit(self.submission, submitter=None, now=EARLY).results
        assert self.first.status is Status.APPENDED, self.first
        if rotate:
            self.agent.rotate(EARLY + 10)
            store.observe(self.agent.identity)

    def again(
        self,
        signer: Signer,
        item: SubmittedRecord,
        at: TraceRecord | None = None,
        time: int = EARLY + 1,
    ) -> SubmittedRecord:
        """`item`'s record signed again by `signer`, dated `time` (default EARLY + 1: before
        the rotation), at its own seq and prev, or at those of record `at`."""
        record = open_envelope(item.envelope)[0]
        place = record if at is None else at
        verified = resign_record(
            signer, record, item.disclosures, seq=place.seq, prev=place.prev, time=time
        )
        return SubmittedRecord(verified.envelope, item.disclosures)

    def send(self, *records: SubmittedRecord, signer: Signer | None = None) -> list[SubmitResult]:
        """`records` sent at EARLY + 20 under the agent's current history, with the stolen
        key's attestation and `signer`'s."""
        keys = (self.stolen,) if signer is None else (self.stolen, signer)
        submission = dataclasses.replace(
            self.submission,
            history=self.agent.identity.history,
            records=records,
            attestations=tuple(k.attestation for k in keys),
        )
        return list(self.collector.submit(submission, submitter=None, now=EARLY + 20).results)


def test_a_logged_record_signed_again_by_a_retired_key_under_the_current_history_is_refused(
    tmp_path: Path,
) -> None:
    """71d outbox 2: the agent's record is in the log; the agent rotates (the node's store
    learns it); the thief of the retired key signs the log's record again, dated before the
    rotation, and sends it under the agent's current history with the retired key's
    attestation: refused ATTESTATION_STALE, as an append of it is, not answered ALREADY."""
    logged = Logged(tmp_path)
    try:
        thiefs = logged.again(logged.stolen, logged.submission.records[0])
        (answer,) = logged.send(thiefs)
        assert (answer.status, answer.reason) == (Status.REFUSED, F.ATTESTATION_STALE), answer
        assert logged.collector.log.size() == 1
    finally:
        logged.collector.log.close()


def test_a_record_and_its_retired_keys_resigning_in_one_batch_is_appended_once(
    tmp_path: Path,
) -> None:
    """71d outbox 3: the agent rotated; one batch under its current history holds a record
    signed by its new key and the same record signed again by the retired key (dated before
    the rotation): the first appended, the second refused ATTESTATION_STALE, not ALREADY."""
    logged = Logged(tmp_path)
    try:
        newest = logged.agent.signer(EARLY + 20)
        (item,) = _batch(logged.collector, newest, EARLY + 20).records
        results = logged.send(item, logged.again(logged.stolen, item), signer=newest)
        assert [r.status for r in results] == [Status.APPENDED, Status.REFUSED], results
        assert results[1].reason is F.ATTESTATION_STALE
        assert logged.collector.log.size() == 2
    finally:
        logged.collector.log.close()


def test_a_routine_rotation_with_more_queued_than_the_bound_commits_and_keeps_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """71d outbox 4 (closed by review 71g, outbox2 1): two rows queued (the trace service
    unreachable), the bound at 1: a routine rotation commits, and both rows stay queued, the
    second listed in the rotation's ticket, both signed by the new key when they are sent."""
    monkeypatch.setattr(limits, "MAX_ROTATION_RESIGNED_RECORDS", 1, raising=False)
    node, outbox = _node_agent(tmp_path)
    try:
        node.identities.rotate("agent", now=NOW + 10)
        assert outbox.pending() == 2
        assert outbox.next_batch(NOW + 20) is not None
        assert _keys(outbox, node, NOW + 20) == [True, True]
    finally:
        outbox.close()
        node.close()
