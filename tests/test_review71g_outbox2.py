"""Review 71g (area: outbox2): the outbox's strict xfails of reviews 71d (outbox 4) and 70b
(outbox 6).

1. (a routine rotation held off by the trace service, low: 71d outbox 4 closed) With more
   than MAX_ROTATION_RESIGNED_RECORDS of the retired key's rows queued (a trace service out
   of reach) every routine rotation was refused OVER_LIMIT; `--compromised`, the one way
   left, set every queued record aside. Now the rotation signs the bound's worth again in its
   transaction and lists the rest in a ticket signed by the new key (one signature:
   troth.trace.outbox_tickets); the outbox signs each listed row again with the current key
   as it comes up, a batch per transaction. A row of the retired key not listed (a thief's,
   written after the rotation, or a listed row's envelope replaced) is set aside as before;
   the ticket is judged as the rows' keys are (`resolve_key`: made under a change in the
   history, and that change the current one), so one the thief writes or edits lists
   nothing. A later routine rotation carries the listed rows still queued into its own
   ticket; a compromised one deletes it.
2. (a delivered record set aside by an older trace service, low: 70b outbox 6 closed) A batch
   the log appended whose answer was lost, signed again by a rotation, is refused REPLAYED by
   a trace service of before review 70o. The client now asks it for the log's copy of each
   record refused so (`prove`, one query each) and the outbox counts the record delivered
   when the copy is the record it sent signed by a key of the agent's own history
   (troth.trace.replayed). Tested by test_review70b_outbox (its strict xfail removed); a copy
   that is not it (another record, a signature that does not verify, no bundle) leaves the
   refusal (test_review71g_refuted).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

from tests.support.killed import killed_after
from tests.support.traces import Held
from tests.test_review69a_outbox import _keys, _node_agent, plant, rotation_killed_before_commit
from tests.test_trace_service import NOW, F, tool
from troth import limits
from troth.faults import CRASH_EXIT_CODE
from troth.node import open_node
from troth.storage import SqliteDatabase
from troth.trace.outbox import TraceOutbox
from troth.trace.outbox_rotation import resign_for_rotation
from troth.trace.signing import open_envelope, resolve_key
from troth.trace.submit import Receipts, Status, SubmitResult

_TICKETS: Final = "SELECT 1 FROM sqlite_master WHERE name = 'trace_outbox_resign'"


class Rotated:
    """An agent's outbox in node.db with `queued` records of its key, then a rotation at NOW -
    50 that signs at most `bound` of them again (MAX_ROTATION_RESIGNED_RECORDS); `stolen` is
    the retired key (a thief's copy); the records are made from `made` on, a second apart."""

    def __init__(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        queued: int = 2,
        bound: int = 1,
        made: int = NOW - 100,
    ) -> None:
        monkeypatch.setattr(limits, "MAX_ROTATION_RESIGNED_RECORDS", bound, raising=False)
        self.path = tmp_path / "node.db"
        self.agent = Held(now=NOW - 1000)
        self.stolen = self.agent.signer(NOW - 1000)
        self.db = SqliteDatabase(self.path)
        self.outbox = self.open(self.db)
        self.ids = [
            self.outbox.add(tool("refund", n=n), now=made + n).record for n in range(queued)
        ]
        self.rotate(NOW - 50)

    def open(self, db: SqliteDatabase) -> TraceOutbox:
        return TraceOutbox(db, self.agent.identifier, lambda now: self.agent.signer(now))

    def rotate(self, at: int, *, compromised: bool = False) -> int:
        before = self.agent.identity
        self.agent.rotate(at)
        fresh = self.agent.signer(at)
        return resign_for_rotation(self.db, before, lambda: fresh, at, compromised=compromised)

    def sent(self, now: int = NOW) -> list[tuple[str, bool]]:
        """Every queued record sent (answered appended, batch after batch): its id, and
        whether its key was the current change's."""
        identity = self.agent.identity
        sent: list[tuple[str, bool]] = []
        while (batch := self.outbox.next_batch(now)) is not None:
            keys = {resolve_key(identity, a).keyid: a for a in batch.submission.attestations}
            for item, record in zip(batch.items, batch.submission.records, strict=True):
                key = keys[_keyid(record.envelope)]
                sent.append((item.record, resolve_key(identity, key).is_current))
            self.outbox.answered(_appended(len(batch.items)), now=now)
        return sent

    def refused(self) -> list[tuple[str, str]]:
        rows = self.outbox.store.refused(agent=self.agent.identifier.digest, limit=10)
        return [(row.record, row.reason) for row in rows]

    def close(self) -> None:
        self.outbox.close()
        self.db.close()


def _keyid(envelope: bytes) -> str:
    return open_envelope(envelope)[3]


def _appended(count: int) -> Receipts:
    return Receipts(tuple(SubmitResult(Status.APPENDED, index=n) for n in range(count)), None)


def test_a_rotation_past_the_bound_commits_and_its_rows_go_under_the_new_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """71g outbox2 1: three rows of the key a rotation retires, the bound at 1: the rotation
    commits (one row signed again in it), and all three go under the new key, none set
    aside; a thief's row of the retired key planted after it is set aside."""
    rotated = Rotated(tmp_path, monkeypatch, queued=3)
    try:
        forged = plant(rotated.outbox, rotated.agent, rotated.stolen, stale=True)
        assert rotated.sent() == [(i, True) for i in rotated.ids]
        assert rotated.refused() == [(forged.record.id, F.ATTESTATION_STALE.value)]
    finally:
        rotated.close()


def test_a_later_rotation_carries_the_rows_left_and_not_a_thiefs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """71g outbox2 1: three rows, the rotation lists two; a thief plants a row of the retired
    key; a second routine rotation before any is sent carries the two listed into its own
    ticket (not the thief's): the three go under the newest key, the thief's is set aside."""
    rotated = Rotated(tmp_path, monkeypatch, queued=3)
    try:
        forged = plant(rotated.outbox, rotated.agent, rotated.stolen, stale=True)
        assert rotated.rotate(NOW - 40) == 1
        assert rotated.sent() == [(i, True) for i in rotated.ids]
        assert rotated.refused() == [(forged.record.id, F.ATTESTATION_STALE.value)]
    finally:
        rotated.close()


def test_rows_left_to_the_outbox_go_under_the_new_key_with_a_signer_fetched_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """71g outbox2 1: the bound at 0 (the rotation lists both rows, signs none again), the
    outbox's signer fetched before the rotation (its retired key still in the vault, as a
    token's may be): the ticket, of a change its history does not hold, has it asked again,
    and both rows go under the new key, not signed again by the retired one."""
    rotated = Rotated(tmp_path, monkeypatch, bound=0)
    try:  # within a minute of its signer's fetching: not asked again for its age
        assert rotated.sent(NOW - 45) == [(i, True) for i in rotated.ids]
        assert rotated.refused() == []
    finally:
        rotated.close()


def test_a_process_killed_while_the_outbox_signs_the_listed_rows_again_loses_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """71g outbox2 1 (crash): three rows, the rotation signs one again and lists two; a
    process signing them again (two a transaction) is killed at statements through its
    first step, then one completes it; this one sends the rest: all three under the new
    key, none set aside."""
    rotated = Rotated(tmp_path, monkeypatch, queued=3)
    signer = rotated.agent.signer(NOW)  # made before the fork: every child signs with it

    def step() -> None:
        db = SqliteDatabase(rotated.path)
        TraceOutbox(db, rotated.agent.identifier, lambda _: signer, batch_records=2).next_batch(NOW)

    try:
        point = 1
        while killed_after(point, step) == CRASH_EXIT_CODE:  # until one runs to its end
            point += 3
            assert point < 300
        assert point > 1
        assert rotated.sent() == [(i, True) for i in rotated.ids]
        assert rotated.refused() == []
    finally:
        rotated.close()


def test_a_rotation_killed_before_or_after_its_commit_loses_no_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """71g outbox2 1 (crash): a node's two rows, the bound at 1. Its rotation killed before
    the commit leaves the rows as they were (no ticket); run again in a process killed just
    after the commit (its ticket committed with it), the next opening of the node sends both
    under the new key, none set aside."""
    monkeypatch.setattr(limits, "MAX_ROTATION_RESIGNED_RECORDS", 1, raising=False)
    node, outbox = _node_agent(tmp_path)
    agent = outbox.identifier.digest
    before = [row.envelope for row in outbox.store.first(agent, 10)]
    rotation_killed_before_commit(node, NOW + 10)
    assert [row.envelope for row in outbox.store.first(agent, 10)] == before
    assert not node.db.run_rows(_TICKETS)
    outbox.close()
    node.close()

    def rotate() -> None:
        opened = open_node("n", home=tmp_path)
        opened.identities.rotate("agent", now=NOW + 10)

    assert killed_after(0, rotate, "identity.rotate.after-commit") == CRASH_EXIT_CODE
    node = open_node("n", home=tmp_path)
    outbox = TraceOutbox(
        node.db, outbox.identifier, lambda now: node.identities.signer("agent", now=now)
    )
    try:
        assert outbox.pending() == 2
        assert outbox.next_batch(NOW + 20) is not None
        assert _keys(outbox, node, NOW + 20) == [True, True]
        assert outbox.store.refused(agent=agent, limit=10) == []
    finally:
        outbox.close()
        node.close()
