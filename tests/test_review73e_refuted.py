"""Review 73e (area: tickets4): attacks on the outbox's re-sign tickets after a rotation (a
thief holding a key an earlier rotation retired, with write access to node.db; a crash at
any statement) that did not work, kept as passing tests."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.support.killed import killed_after
from tests.test_review71g_outbox2 import Rotated
from tests.test_review71o_wave2e import forged_by_thief, planted
from tests.test_review72e_tickets import under_column
from tests.test_trace_service import NOW, F, tool
from troth import limits
from troth.crypto import sha256
from troth.errors import TraceError
from troth.faults import CRASH_EXIT_CODE
from troth.identity import Signer
from troth.storage import SqliteDatabase
from troth.trace.dsse import pae
from troth.trace.outbox import TraceOutbox
from troth.trace.outbox_rotation import resign_for_rotation
from troth.trace.outbox_tickets import TICKET_TYPE, read_ticket
from troth.trace.signing import VerifiedRecord, sign_record


def thief_ticket(
    rotated: Rotated, signer: Signer, hashes: Sequence[bytes], attestation: bytes
) -> None:
    """A `.v3` ticket of `rotated`'s agent listing `hashes`, signed by `signer` (a key the
    thief holds), with `attestation` in its column, written as a writer of node.db can."""
    agent, blob = rotated.agent.identifier.digest, b"".join(hashes)
    with rotated.db.transaction():
        rotated.db.execute(
            "INSERT OR REPLACE INTO trace_outbox_resign VALUES (?, ?, ?, ?)",
            (agent, blob, signer.sign(pae(TICKET_TYPE, agent + blob)), attestation),
        )


def never_sent(rotated: Rotated, forged: VerifiedRecord) -> None:
    """`forged` (a thief's) is not sent under the current key, and is set aside."""
    assert (forged.record.id, True) not in rotated.sent()
    assert forged.record.id in {record for record, _ in rotated.refused()}


@pytest.mark.parametrize("column", ["its-own", "the-current-keys"])
def test_a_v3_ticket_a_thief_signs_with_a_retired_key_lists_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, column: str
) -> None:
    """Tried (1: a `.v3` ticket planted): the thief holding K0 (retired by the rotation)
    plants its record of K0 and writes a `.v3` ticket listing it with the hashes the
    rotation's ticket listed, signed by K0, with K0's attestation in the column, or K1's
    (the ticket naming the right key): K0 is not current, and K1 made no such signature: the
    ticket lists nothing, the thief's record is set aside (the agent's listed row too: no
    more than deleting it)."""
    rotated = Rotated(tmp_path, monkeypatch, queued=3)
    try:
        forged = forged_by_thief(rotated)
        planted(rotated, forged)
        listed = read_ticket(rotated.db, rotated.agent.identity).hashes
        current = rotated.agent.signer(NOW - 50).attestation
        named = rotated.stolen.attestation if column == "its-own" else current
        thief_ticket(rotated, rotated.stolen, [*listed, sha256(forged.envelope)], named)
        assert not read_ticket(rotated.db, rotated.agent.identity)
        never_sent(rotated, forged)
    finally:
        rotated.close()


@pytest.mark.parametrize("replay", [True, False], ids=["put-back", "edited"])
def test_an_honest_ticket_put_back_after_a_second_rotation_lists_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, replay: bool
) -> None:
    """Tried (1: an old honest ticket replayed): the first rotation's ticket (K1's, listing
    two rows of K0) kept; the thief holding K0 plants its record; a second rotation carries
    the two rows into its own ticket (K2's); the thief puts the first one back, or puts its
    record's hash into the second one (K2's signature then over other bytes): either lists
    nothing, the thief's record is set aside."""
    rotated = Rotated(tmp_path, monkeypatch, queued=3)
    try:
        first = rotated.db.fetch_one("SELECT * FROM trace_outbox_resign")
        assert first is not None
        forged = forged_by_thief(rotated)
        planted(rotated, forged)
        rotated.rotate(NOW - 40)
        with rotated.db.transaction():
            if replay:
                rotated.db.execute("DELETE FROM trace_outbox_resign")
                rotated.db.execute("INSERT INTO trace_outbox_resign VALUES (?, ?, ?, ?)", first)
            else:
                rotated.db.execute(
                    "UPDATE trace_outbox_resign SET hashes = hashes || ?",
                    (sha256(forged.envelope),),
                )
        assert not read_ticket(rotated.db, rotated.agent.identity)
        never_sent(rotated, forged)
    finally:
        rotated.close()


def test_two_rotations_before_a_send_with_a_ticket_at_the_bound_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried (1 and 2: two rotations before a send, an outbox full at TRACE_OUTBOX_RECORDS
    exactly): TRACE_OUTBOX_RECORDS at 4, MAX_ROTATION_RESIGNED_RECORDS at 0, four rows of K0:
    the first rotation lists all four (the bound exactly: read whole); the thief holding K0
    plants its record, a second rotation carries the four (not the thief's, which would be a
    fifth); all four go under K2, the thief's is set aside."""
    monkeypatch.setattr(limits, "TRACE_OUTBOX_RECORDS", 4, raising=False)
    rotated = Rotated(tmp_path, monkeypatch, queued=4, bound=0)
    try:
        assert len(read_ticket(rotated.db, rotated.agent.identity).hashes) == 4
        forged = forged_by_thief(rotated)
        planted(rotated, forged)
        under_column(rotated, forged, rotated.agent.signer(NOW - 50).attestation)
        assert rotated.rotate(NOW - 40) == 0
        under_column(rotated, forged, forged.attestation)
        listed = read_ticket(rotated.db, rotated.agent.identity).hashes
        assert len(listed) == 4
        assert sha256(forged.envelope) not in listed
        assert rotated.sent() == [(i, True) for i in rotated.ids]
        assert rotated.refused() == [(forged.record.id, F.ATTESTATION_STALE.value)]
    finally:
        rotated.close()


class _RolledBack(Exception):
    pass


def test_the_key_of_a_rotation_rolled_back_signs_no_ticket_that_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried (1: a ticket for a rotation that was rolled back): a rotation (K1 to K2) whose
    transaction rolls back after it signed its ticket; the thief keeps K2 (the vault, no part
    of node.db's transaction, held it) and, after the agent's rotation made again (another
    change), plants its record of K2 and a `.v3` ticket of K2 listing it: K2 is attested under
    a change not in the history, the ticket lists nothing, the record is set aside; the
    agent's rows go under the newest key."""
    rotated = Rotated(tmp_path, monkeypatch, queued=3)
    try:
        agent, held = rotated.agent, rotated.agent.held
        before = agent.identity
        agent.rotate(NOW - 40)
        kept = agent.signer(NOW - 40)
        with pytest.raises(_RolledBack), rotated.db.transaction():
            resign_for_rotation(rotated.db, before, lambda: kept, NOW - 40)
            assert read_ticket(rotated.db, agent.identity)  # signed by K2, then rolled back
            raise _RolledBack
        agent.held = held  # the identity as the rolled back transaction left it
        rotated.rotate(NOW - 30)
        forged = sign_record(
            kept, tool("wire_transfer"), seq=0, prev=None, time=NOW - 35, random=os.urandom
        )
        planted(rotated, forged)
        thief_ticket(rotated, kept, [sha256(forged.envelope)], kept.attestation)
        assert not read_ticket(rotated.db, agent.identity)
        never_sent(rotated, forged)
    finally:
        rotated.close()


def test_a_rotation_count_planted_low_launders_no_record_of_the_retired_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried (1: `trace_outbox_rotated` planted, with 73e tickets4 1's listed rows of any
    date): after the rotation (K0 to K1, one row listed), the count set to 0: the outbox,
    its signer fetched before (K0, still in the vault), signs a record with it, dated after
    the rotation. No ticket lists it: set aside KEY_RETIRED, the agent's rows go under K1."""
    rotated = Rotated(tmp_path, monkeypatch)
    try:
        with rotated.db.transaction():
            rotated.db.execute("UPDATE trace_outbox_rotated SET changes = 0")
        late = rotated.outbox.add(tool("refund", n=9), now=NOW - 45).record
        assert rotated.sent() == [(i, True) for i in rotated.ids]
        assert rotated.refused() == [(late, F.KEY_RETIRED.value)]
    finally:
        rotated.close()


def test_an_outbox_killed_through_its_resign_of_listed_rows_loses_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried (2: a crash between the rotation's commit and the re-sign): three rows of K0,
    the rotation (bound 1) lists two; a process sending the outbox (signing the stale rows
    again, the listed ones among them, in one transaction) killed at every other one of its
    SQLite statements in turn (71g outbox2's test kills every third, two rows a
    transaction), then one that finishes: every row goes under K1, none set aside."""
    rotated = Rotated(tmp_path, monkeypatch, queued=3)
    signer = rotated.agent.signer(NOW)  # made before the fork: every child signs with it
    try:

        def send() -> None:
            db = SqliteDatabase(rotated.path)
            outbox = TraceOutbox(db, rotated.agent.identifier, lambda _: signer)
            assert outbox.next_batch(NOW) is not None

        statement, code = 0, CRASH_EXIT_CODE
        while code == CRASH_EXIT_CODE:
            statement += 2
            code = killed_after(statement, send)
        assert code == 0
        assert statement > 10  # killed at every other statement before the run that finished
        rows = rotated.outbox.store.first(rotated.agent.identifier.digest, 10)
        assert not any(row.stale for row in rows)  # signed again by the run that finished
        assert rotated.sent() == [(i, True) for i in rotated.ids]
        assert rotated.refused() == []
    finally:
        rotated.close()


def test_a_huge_rotation_count_refuses_adds_only_until_the_next_rotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried (3: the known `trace_outbox_rotated` count past the history, a DoS?): planted
    huge, it refuses the agent's `add` ATTESTATION_STALE, the refusal naming the count and
    the history (an operator's clue), nothing recorded; the same writer of node.db refuses
    it as well through the outbox's own counters (OVER_LIMIT): no more than it can do
    anyway. The agent's next rotation writes the count again and the records go (bounded:
    docs/formats.md, `trace_outbox_rotated`)."""
    rotated = Rotated(tmp_path, monkeypatch)
    huge = 2**62
    try:
        with rotated.db.transaction():
            rotated.db.execute("UPDATE trace_outbox_agents SET queued = queued + ?", (huge,))
        with pytest.raises(TraceError) as full:
            rotated.outbox.add(tool("refund", n=7), now=NOW - 45)
        assert full.value.reason is F.OVER_LIMIT
        with rotated.db.transaction():
            rotated.db.execute("UPDATE trace_outbox_agents SET queued = queued - ?", (huge,))
            rotated.db.execute("UPDATE trace_outbox_rotated SET changes = ?", (huge,))
        with pytest.raises(TraceError) as refused:
            rotated.outbox.add(tool("refund", n=8), now=NOW - 44)
        assert refused.value.reason is F.ATTESTATION_STALE
        assert f"says {huge} changes retired, the agent's history holds 2" in str(refused.value)
        rotated.rotate(NOW - 40)
        late = rotated.outbox.add(tool("refund", n=9), now=NOW - 35).record
        assert rotated.sent() == [(i, True) for i in [*rotated.ids, late]]
        assert rotated.refused() == []
    finally:
        rotated.close()
