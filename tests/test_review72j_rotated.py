"""Review 72j (area: rotated): a review of review 72e's two outbox fixes (a rotation's ticket
lists only envelopes naming the key it retires; `trace_outbox_rotated`, read by `add`).

1. (an add failing bare on a damaged row, low) `TraceOutbox._append` read the count a
   rotation wrote (`trace_outbox_rotated.changes`) as `CAST(changes AS INTEGER)` and `int()`
   of it: a NULL (the table made again without its NOT NULL by a writer of node.db, or
   damaged on disk) failed every `add` with a bare TypeError, and a TEXT, BLOB, REAL or
   negative count read as some whole number (a text as 0: the check skipped, silently). It
   is now read as its type says (troth.storage.row_types): anything but a whole number not
   below 0 is StorageError saying node.db is damaged.
2. (honest listed rows set aside, low) A rotation listed in its ticket every envelope of the
   rows it left that named the key it retires (its keyid decoded, not verified), once per
   row: a writer of node.db without any key planting rows past the bound (copies of a queued
   envelope, envelopes naming the key with a signature of junk) pushed the ticket past what
   `read_ticket` accepts (TRACE_OUTBOX_RECORDS hashes), and every honest row it listed was
   set aside as of a retired key no ticket lists. The ticket now lists each hash once, at
   most TRACE_OUTBOX_RECORDS of them (the rows in order: an outbox holds no more of the
   agent's own).
3. (a thief's record signed by the new key, from a ticket written before 72e's fix, low) A
   ticket a rotation wrote before review 72e, tickets 1, may list a thief's envelope of a key
   an earlier rotation retired (planted under the retired key's column); the ticket's type
   did not change (`.v2`), so it still verified, a later rotation carried the hash into its
   own ticket, and the outbox signed the thief's record with the current key. The ticket's
   type is now `.v3`; a `.v2` ticket lists only envelopes of a key of the change before its
   signer's (the key its rotation retired), as the outbox and a later rotation read it: the
   agent's rows it listed first still go across the upgrade; rows it carried from an earlier
   ticket are set aside.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.test_review71g_outbox2 import Rotated
from tests.test_review71o_wave2e import forged_by_thief, planted
from tests.test_review72e_tickets import under_column
from tests.test_trace_service import NOW, F, tool
from troth import limits
from troth.crypto import sha256
from troth.errors import StorageError
from troth.trace.dsse import decode_envelope, encode_envelope, pae
from troth.trace.outbox_tickets import LEGACY_TICKET_TYPE, read_ticket
from troth.trace.record import PAYLOAD_TYPE
from troth.trace.signing import VerifiedRecord


def copied(rotated: Rotated, record: str, name: str, envelope: bytes) -> None:
    """A row like `record`'s planted as a writer of node.db can: under id `name`, with
    `envelope`, after every row queued."""
    with rotated.db.transaction():
        rotated.db.execute(
            "INSERT INTO trace_outbox (agent, record, seq, hash, time, made, envelope, "
            "disclosures, attestation, chain, size, stale) SELECT agent, ?, seq, hash, time, "
            "made, ?, disclosures, attestation, chain, size, stale FROM trace_outbox "
            "WHERE record = ?",
            (name, envelope, record),
        )


def resigned(envelope: bytes, signature: bytes) -> bytes:
    """`envelope` with `signature` in place of its own (its payload and keyid as they are)."""
    decoded, keyid = decode_envelope(envelope)
    return encode_envelope(PAYLOAD_TYPE, decoded.payload, keyid, signature)


def envelope_of(rotated: Rotated, record: str) -> bytes:
    row = rotated.db.fetch_one("SELECT envelope FROM trace_outbox WHERE record = ?", (record,))
    assert row is not None
    return bytes(row[0])


class Crowded(Rotated):
    """Rotated (two rows, the bound at 1), where a writer of node.db without any key plants,
    just before the rotation, two copies of the row it will leave and four rows naming the
    key it retires with a signature of junk."""

    def rotate(self, at: int, *, compromised: bool = False) -> int:
        if not hasattr(self, "crowded"):
            self.crowded = True
            last = self.ids[-1]
            envelope = envelope_of(self, last)
            for n in range(2):
                copied(self, last, f"copy-{n}", envelope)
            for n in range(4):
                copied(self, last, f"junk-{n}", resigned(envelope, bytes([n + 1]) * 64))
        return super().rotate(at, compromised=compromised)


def test_junk_past_the_bound_does_not_push_the_honest_rows_out_of_the_ticket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """72j rotated 2: TRACE_OUTBOX_RECORDS at 4, a rotation leaving the agent's row and six
    planted ones naming the retired key (two copies of it, four of junk signatures). Before:
    seven hashes listed, more than `read_ticket` takes, so the ticket listed none and the
    agent's row was set aside ATTESTATION_STALE. Now: listed once, with the first junk (four
    hashes), the agent's two rows go under the new key."""
    monkeypatch.setattr(limits, "TRACE_OUTBOX_RECORDS", 4, raising=False)
    rotated = Crowded(tmp_path, monkeypatch)
    try:
        listed = read_ticket(rotated.db, rotated.agent.identity).hashes
        assert len(listed) == 4
        assert sha256(envelope_of(rotated, rotated.ids[-1])) in listed
        sent = rotated.sent()
        assert [(i, True) for i in rotated.ids] == [s for s in sent if s[0] in rotated.ids]
        assert not {i for i, _ in rotated.refused()} & set(rotated.ids)
    finally:
        rotated.close()


@pytest.mark.parametrize(
    "changes",
    ["NULL", "'1'", "x'01'", "1.5", "-1"],
    ids=["null", "text", "blob", "real", "negative"],
)
def test_a_damaged_rotation_count_is_named_damage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changes: str
) -> None:
    """72j rotated 1: the agent's `trace_outbox_rotated` row made to hold a NULL (its table
    made again without NOT NULL), a text, a blob, a real or a negative count. Before: NULL
    failed `add` with a bare TypeError, the others were read as a whole number (the text as
    1, the blob as 0, the real as 1, the negative as it is) and the record signed. Now: add
    fails StorageError (node.db damaged), nothing recorded."""
    rotated = Rotated(tmp_path, monkeypatch)
    try:
        with rotated.db.transaction():
            rotated.db.execute("DROP TABLE trace_outbox_rotated")
            rotated.db.execute("CREATE TABLE trace_outbox_rotated (agent BLOB, changes)")
            rotated.db.execute(
                f"INSERT INTO trace_outbox_rotated VALUES (?, {changes})",  # noqa: S608
                (rotated.agent.identifier.digest,),
            )
        queued = rotated.outbox.pending()
        with pytest.raises(StorageError, match="damaged"):
            rotated.outbox.add(tool("refund", n=9), now=NOW - 45)
        assert rotated.outbox.pending() == queued
    finally:
        rotated.close()


def legacy_ticket(rotated: Rotated, hashes: Sequence[bytes]) -> None:
    """The agent's ticket as the code before 72e's fix 1 wrote it: `.v2`, listing `hashes`,
    signed by the agent's current key."""
    agent, signer = rotated.agent.identifier.digest, rotated.agent.signer(NOW - 50)
    blob = b"".join(hashes)
    with rotated.db.transaction():
        rotated.db.execute(
            "INSERT OR REPLACE INTO trace_outbox_resign VALUES (?, ?, ?, ?)",
            (agent, blob, signer.sign(pae(LEGACY_TICKET_TYPE, agent + blob)), signer.attestation),
        )


def carried_by_a_legacy_ticket(rotated: Rotated) -> VerifiedRecord:
    """A thief holding K0 (`rotated`'s first rotation retired it) plants its record under the
    current key's column; a second rotation's ticket is put as the code before 72e's fix
    wrote it (`.v2`, the thief's envelope listed); a third rotation carries it; the thief
    puts K0's attestation in the column. Its record."""
    forged = forged_by_thief(rotated)
    planted(rotated, forged)
    under_column(rotated, forged, rotated.agent.signer(NOW - 50).attestation)
    rotated.rotate(NOW - 40)
    listed = read_ticket(rotated.db, rotated.agent.identity).hashes
    legacy_ticket(rotated, [*listed, sha256(forged.envelope)])
    rotated.rotate(NOW - 30)
    under_column(rotated, forged, forged.attestation)
    return forged


def test_a_ticket_written_before_72e_does_not_launder_a_thiefs_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """72j rotated 3: a thief holding K0 (the first rotation retired it) plants its record
    under K1's column; the second rotation's ticket is put as the code before 72e's fix wrote
    it (the thief's envelope listed, signed by K2); a third rotation carries it; the thief
    puts K0's attestation in the column. Before: the thief's record went under K3. Now: the
    `.v2` ticket lists only envelopes of K1 (the key its rotation retired): the thief's is set
    aside, and so is the agent's row of K0 it carried from the first ticket (the two are
    told apart by nothing a `.v2` ticket holds: deny when in doubt)."""
    rotated = Rotated(tmp_path, monkeypatch)
    try:
        forged = carried_by_a_legacy_ticket(rotated)
        assert (forged.record.id, True) not in rotated.sent()
        carried = rotated.ids[1]  # K0's, listed by the first ticket, carried by the .v2 one
        stale = F.ATTESTATION_STALE.value
        assert sorted(rotated.refused()) == sorted([(forged.record.id, stale), (carried, stale)])
    finally:
        rotated.close()


def test_a_ticket_written_before_72e_still_lists_the_rows_its_rotation_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """72j rotated 3: three rows of K0, a rotation (bound 1) leaves two; its ticket put as the
    code before 72e's fix wrote it (`.v2`, the same hashes): both are still listed, and all
    three go under K1, none set aside (an upgrade loses none of them)."""
    rotated = Rotated(tmp_path, monkeypatch, queued=3)
    try:
        listed = read_ticket(rotated.db, rotated.agent.identity)
        assert listed.change is None
        assert len(listed.hashes) == 2
        legacy_ticket(rotated, sorted(listed.hashes))
        legacy = read_ticket(rotated.db, rotated.agent.identity)
        assert legacy.hashes == listed.hashes
        assert legacy.change is not None
        assert rotated.sent() == [(i, True) for i in rotated.ids]
        assert rotated.refused() == []
    finally:
        rotated.close()
