"""Review 72o (area: tickets3): attacks on review 72j's ticket `.v3` and its `.v2` rule that
did not work, kept as passing tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_review71g_outbox2 import Rotated
from tests.test_review71o_wave2e import TICKET, TRACE, forged_by_thief, planted
from tests.test_review72j_rotated import carried_by_a_legacy_ticket, copied, envelope_of, resigned
from tests.test_review72o_tickets3 import RotatedToP256
from tests.test_trace_service import F
from tests.vectors.trace.generate import CREATED
from troth import limits
from troth.crypto import sha256, verify_signature
from troth.errors import CryptoError
from troth.identity import verify_history
from troth.trace.dsse import pae
from troth.trace.outbox_tickets import LEGACY_TICKET_TYPE, TICKET_TYPE, read_ticket
from troth.trace.signing import resolve_key


def test_a_v3_ticket_is_not_read_as_a_v2_one() -> None:
    """72o tickets3 refuted: downgrading the golden vector's `.v3` ticket to `.v2` (no label is
    stored to change: the type is only inside the signed bytes, so its signature would have to
    verify over the `.v2` PAE) or upgrading a `.v2` one the same way. The signature verifies
    over the `.v3` bytes only (and `.v2` would gain nothing: it lists less)."""
    identity = verify_history(bytes.fromhex(TRACE["agent_history"]), now=CREATED)
    key = resolve_key(identity, bytes.fromhex(TICKET["attestation"])).key
    body = bytes.fromhex(TICKET["agent"]) + bytes.fromhex(TICKET["hashes"])
    signature = bytes.fromhex(TICKET["signature"])
    verify_signature(key, signature, pae(TICKET_TYPE, body))
    with pytest.raises(CryptoError):
        verify_signature(key, signature, pae(LEGACY_TICKET_TYPE, body))


def test_a_v2_ticket_signed_by_a_key_retired_before_lists_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """72o tickets3 refuted: a thief holding K0 (the rotation retired it) writes a fresh `.v2`
    ticket naming its own record, signed by K0 with K0's attestation (the `.v2` rule takes
    envelopes of the change before its signer's: change -1, none): the ticket lists nothing
    (its key not of the current change), the thief's record is set aside, and the agent's rows
    the rotation's ticket listed go with it (none under the thief's ticket)."""
    rotated = Rotated(tmp_path, monkeypatch)
    try:
        forged = forged_by_thief(rotated)
        planted(rotated, forged)
        agent, blob = rotated.agent.identifier.digest, sha256(forged.envelope)
        with rotated.db.transaction():
            rotated.db.execute(
                "INSERT OR REPLACE INTO trace_outbox_resign VALUES (?, ?, ?, ?)",
                (
                    agent,
                    blob,
                    rotated.stolen.sign(pae(LEGACY_TICKET_TYPE, agent + blob)),
                    rotated.stolen.attestation,
                ),
            )
        assert not read_ticket(rotated.db, rotated.agent.identity)
        assert (forged.record.id, True) not in rotated.sent()
        assert (forged.record.id, F.ATTESTATION_STALE.value) in rotated.refused()
    finally:
        rotated.close()


def test_a_v2_ticket_of_a_rotation_to_another_key_type_launders_no_thiefs_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """72o tickets3 refuted: 72j rotated 3's attack with every rotation to another key type
    (two changes each), under 72o's rule (a `.v2` ticket lists envelopes of the change two
    before its signer's): a thief holding K0 plants its record under K2's column, a second
    rotation's ticket is put as the code before 72e's fix wrote it (the thief's envelope
    listed, signed by K4), a third rotation carries it, the thief puts K0's attestation in
    the column: its record is set aside, never signed by the new key."""
    rotated = RotatedToP256(tmp_path, monkeypatch)
    try:
        forged = carried_by_a_legacy_ticket(rotated)
        assert (forged.record.id, True) not in rotated.sent()
        assert (forged.record.id, F.ATTESTATION_STALE.value) in rotated.refused()
    finally:
        rotated.close()


class PlantedFirst(Rotated):
    """Rotated (two rows, the bound at 1), where a writer of node.db without any key plants,
    just before the rotation, three rows naming the key it retires with signatures of junk,
    and moves the row the rotation will leave after them (they come first in the ticket)."""

    def rotate(self, at: int, *, compromised: bool = False) -> int:
        if not hasattr(self, "planted"):
            self.planted = [f"junk-{n}" for n in range(3)]
            last = self.ids[-1]
            envelope = envelope_of(self, last)
            for n, name in enumerate(self.planted):
                copied(self, last, name, resigned(envelope, bytes([n + 1]) * 64))
            with self.db.transaction():
                self.db.execute("UPDATE trace_outbox SET pos = 1000 WHERE record = ?", (last,))
        return super().rotate(at, compromised=compromised)


def test_rows_planted_to_sort_first_deny_no_more_than_deleting_and_launder_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """72o tickets3 refuted: TRACE_OUTBOX_RECORDS at 3, a writer of node.db plants three junk
    rows naming the retired key before every queued row, so the ticket's bound is spent on
    them and the agent's row the rotation left is past it. The agent's row is set aside (a
    denial that writer has anyway: it can delete the row; before 72j's fix every listed row
    was), and no junk row is ever signed by the new key or sent."""
    monkeypatch.setattr(limits, "TRACE_OUTBOX_RECORDS", 3, raising=False)
    rotated = PlantedFirst(tmp_path, monkeypatch)
    try:
        assert len(read_ticket(rotated.db, rotated.agent.identity).hashes) == 3
        sent = rotated.sent()
        assert {i for i, _ in sent} <= set(rotated.ids)
        assert {i for i, _ in rotated.refused()} >= set(rotated.planted)
    finally:
        rotated.close()
