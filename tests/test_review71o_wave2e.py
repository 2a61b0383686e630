"""Review 71o (area: wave2e): the outbox's re-sign tickets (troth.trace.outbox_tickets) and
the REPLAYED prove path (troth.trace.replayed), as merged from review 71g.

1. (a thief's record signed by the new key, medium) A rotation listed, in its ticket, the
   `hash` column of the retired key's rows it left to the outbox, read as stored: a writer
   of node.db without the agent's key (before the rotation) wrote in a row of that key the
   SHA-256 of a payload of its choosing; holding the retired key later (a stolen backup),
   it planted that payload signed by the retired key, and the outbox signed it again with
   the new key, the verified payload's hash being listed. The ticket now lists the SHA-256
   of each row's stored envelope (its payload and the retired key's signature, a value no
   writer without the key can choose beforehand), computed by the rotation from the
   envelope it reads, and the outbox checks the verified row's envelope against it
   (ticket type application/vnd.troth.outbox-resign.v2; `.v3` since review 72j, rotated 3).
2. (the ticket as a signed troth format) A golden vector: tests/vectors/trace/ticket_vectors.json
   (tests/vectors/trace/generate_ticket.py), rebuilt byte for byte and read back as the
   outbox reads a ticket.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.test_review71g_outbox2 import Rotated
from tests.test_trace_service import NOW, F, tool
from tests.vectors.trace.generate import CREATED
from tests.vectors.trace.generate_ticket import build as build_ticket
from troth.crypto import sha256
from troth.identity import verify_history
from troth.storage import SqliteDatabase
from troth.trace.dsse import pae
from troth.trace.outbox_tickets import TICKET_TYPE, read_ticket
from troth.trace.signing import VerifiedRecord, sign_record

_VECTORS = Path(__file__).parent / "vectors" / "trace"
TICKET: dict[str, Any] = json.loads((_VECTORS / "ticket_vectors.json").read_text())["vectors"]
TRACE: dict[str, Any] = json.loads((_VECTORS / "trace_vectors.json").read_text())["vectors"]


def forged_by_thief(rotated: Rotated) -> VerifiedRecord:
    """A thief's record (`wire_transfer`, dated NOW - 600) signed by the retired key."""
    return sign_record(
        rotated.stolen,
        tool("wire_transfer"),
        seq=0,
        prev=None,
        time=NOW - 600,
        random=os.urandom,
    )


def planted(rotated: Rotated, forged: VerifiedRecord) -> None:
    """`forged` written into the outbox's queue, stale, as a writer of node.db can."""
    with rotated.outbox.store.transaction():
        rotated.outbox.store.insert(
            rotated.agent.identifier.digest, forged, made=NOW - 600, chain=None, stale=True
        )


class EditedBeforeRotation(Rotated):
    """Rotated, where a writer of node.db without the key edits the row the rotation will
    leave (the last) just before the rotation (`edit`, in a transaction), for a thief's
    record (`forged`) signed by the retired key afterwards (its payload needs no key: made
    here with the stolen one for brevity, as it will be)."""

    forged: VerifiedRecord | None = None

    def edit(self, forged: VerifiedRecord) -> None:
        raise NotImplementedError

    def rotate(self, at: int, *, compromised: bool = False) -> int:
        if self.forged is None:
            self.forged = forged_by_thief(self)
            with self.db.transaction():
                self.edit(self.forged)
        return super().rotate(at, compromised=compromised)


class _HashEdited(EditedBeforeRotation):
    """The `hash` column set to the SHA-256 of the thief's payload."""

    def edit(self, forged: VerifiedRecord) -> None:
        self.db.execute(
            "UPDATE trace_outbox SET hash = ? WHERE record = ?", (forged.hash, self.ids[-1])
        )


def test_a_hash_written_before_the_rotation_gets_no_thiefs_record_signed_by_the_new_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """71o wave2e 1: the ticket listed the row's `hash` column as stored; the thief's record
    whose payload hash it was, planted after the rotation (signed by the retired key), was
    signed by the new key and sent. Now it is set aside, and the honest row goes."""
    rotated = _HashEdited(tmp_path, monkeypatch)
    forged = rotated.forged
    assert forged is not None
    try:
        planted(rotated, forged)
        sent = rotated.sent()
        assert (forged.record.id, True) not in sent
        assert rotated.refused() == [(forged.record.id, F.ATTESTATION_STALE.value)]
        assert sent == [(i, True) for i in rotated.ids]
    finally:
        rotated.close()


class _EnvelopeEdited(EditedBeforeRotation):
    """The envelope set to the thief's payload with a signature that does not verify (the
    retired key's signature over it, made later, is unknown to the writer), and the `hash`
    column to its payload's hash."""

    def edit(self, forged: VerifiedRecord) -> None:
        envelope = forged.envelope.replace(b'"sig":"', b'"sig":"AAAA', 1)
        self.db.execute(
            "UPDATE trace_outbox SET envelope = ?, hash = ? WHERE record = ?",
            (envelope, forged.hash, self.ids[-1]),
        )


def test_an_envelope_written_before_the_rotation_lists_no_record_signed_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """71o wave2e 1 (the envelope column too): the writer puts the thief's payload in the left
    row before the rotation, under a signature that does not verify, and its hash in the
    `hash` column: the rotation listed that hash, and the thief's record was signed by the new
    key. Now the rotation lists that envelope's hash; the thief's record signed by the
    retired key afterwards is another envelope, not listed: set aside (the edited row too,
    its signature bad)."""
    rotated = _EnvelopeEdited(tmp_path, monkeypatch)
    forged = rotated.forged
    assert forged is not None
    try:
        planted(rotated, forged)
        assert rotated.sent() == [(rotated.ids[0], True)]
        assert sorted(rotated.refused()) == sorted(
            [(rotated.ids[1], F.BAD_SIGNATURE.value), (forged.record.id, F.ATTESTATION_STALE.value)]
        )
    finally:
        rotated.close()


def test_the_ticket_vector_regenerates_byte_for_byte() -> None:
    """71o wave2e 2: the ticket row as write_ticket makes it, its signed bytes (the DSSE PAE
    of the type tag, version included, over the agent's digest and the hashes) and the
    hashes of the trace vectors' envelopes."""
    assert build_ticket() == TICKET
    agent, hashes = bytes.fromhex(TICKET["agent"]), bytes.fromhex(TICKET["hashes"])
    assert TICKET["payload_type"] == TICKET_TYPE == "application/vnd.troth.outbox-resign.v3"
    assert pae(TICKET_TYPE, agent + hashes).hex() == TICKET["signed"]
    envelopes = [sha256(record["envelope"].encode()).hex() for record in TRACE["records"][:2]]
    assert TICKET["envelope_hashes"] == envelopes
    assert "".join(envelopes) == TICKET["hashes"]


@pytest.mark.parametrize("edit", [None, "signature", "hashes"])
def test_the_stored_ticket_vector_is_read_as_the_outbox_reads_it(edit: str | None) -> None:
    """71o wave2e 2: the stored row, put in node.db, lists the two hashes for the agent of the
    trace vectors; one byte of its signature or hashes changed, it lists none."""
    row = {
        name: bytes.fromhex(TICKET[name])
        for name in ("agent", "hashes", "signature", "attestation")
    }
    if edit is not None:
        row[edit] = row[edit][:-1] + bytes([row[edit][-1] ^ 1])
    identity = verify_history(bytes.fromhex(TRACE["agent_history"]), now=CREATED)
    assert identity.identifier.digest == row["agent"]
    db = SqliteDatabase(":memory:")
    try:
        with db.transaction():
            db.execute(
                "CREATE TABLE trace_outbox_resign (agent BLOB PRIMARY KEY, hashes BLOB NOT NULL, "
                "signature BLOB NOT NULL, attestation BLOB NOT NULL)"
            )
            db.execute("INSERT INTO trace_outbox_resign VALUES (?, ?, ?, ?)", tuple(row.values()))
        listed = read_ticket(db, identity)
    finally:
        db.close()
    hashes = {bytes.fromhex(h) for h in TICKET["envelope_hashes"]}
    assert listed.hashes == (hashes if edit is None else frozenset())
    assert listed.change is None  # a .v3 ticket: of any key (review 72j, rotated 3)


def test_formats_md_names_the_tickets_type_and_signed_bytes() -> None:
    """71o wave2e 2: docs/formats.md names the type tag the code signs (its version in it),
    and the signed bytes' prefix as the vector's are."""
    formats = (Path(__file__).parent.parent / "docs" / "formats.md").read_text()
    assert f"`DSSEv1 {len(TICKET_TYPE)} {TICKET_TYPE} LEN `" in formats
    prefix = bytes.fromhex(TICKET["signed"]).split(bytes.fromhex(TICKET["agent"]))[0]
    assert prefix == f"DSSEv1 {len(TICKET_TYPE)} {TICKET_TYPE} {32 + 32 * 2} ".encode()
