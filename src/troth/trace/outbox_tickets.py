"""The rows of the trace outbox a rotation leaves to be signed again after its commit (review
71g, closing review 71d outbox 4).

A rotation signs again, in its transaction, at most MAX_ROTATION_RESIGNED_RECORDS queued rows
of the key it retires (troth.trace.outbox_rotation). Before, with more of them queued (a trace
service out of reach for a while) it was refused OVER_LIMIT, every routine rotation of the
agent with it, until the records were delivered: a party keeping the node from its trace
service held off the agent's key rotation, and `--compromised`, the one way left, set every
queued record aside. Now the rest stay queued, stale, and the rotation signs with the new key
one *ticket*: the hashes (SHA-256 of the stored envelope: the payload and the retired key's
signature over it) of the rows it leaves, under the agent's digest (the DSSE pre-authentication
encoding of TICKET_TYPE: no other signature of the agent's key is over those bytes). The
rotation hashes each envelope it reads, never the row's `hash` column: a writer of node.db
without the key, before the rotation, stored there the hash of a payload of its choosing, and
once it held the retired key (a stolen backup) the record it signed with it was listed, signed
again by the new key (review 71o, wave2e 1; the ticket's type then `.v1`, of payload hashes).
The rotation lists only an envelope naming the key it retires (its DSSE keyid, decoded): the
outbox verifies a listed envelope under the key it names, so a row of another key planted under
the retired key's column (a key an earlier rotation retired, the column changed after the
rotation) is not listed (review 72e, tickets 1). An envelope's hash commits to a signature only
the retired key could make when the rotation read it. The outbox signs each of them again with
the current key when it comes up (`TraceOutbox._resign`, a batch of rows per transaction), as
it signs any stale row: the row's envelope verified as the agent's, signed by a key its history
attests, and, that key retired, the hash of the envelope so verified listed by the agent's
ticket, which must verify under a key of the agent's *current* change (`resolve_key`: made
under a change in the history, the newest). A thief holding the retired key and node.db gains
nothing: a row it writes after the rotation (a record of its choosing signed by the retired
key, dated before the rotation) is not listed, so it is set aside as before (a row's `hash`
column is not trusted: the hash is the verified envelope's, at the rotation and at the outbox);
a ticket it writes or edits does not verify under the current key; one of the agent's own
records listed, put back after it was delivered, is only the agent's record again (the log
answers it already, or refuses it REPLAYED: nothing of the thief's). A listed row is verified
whatever time it bears, its key's retirement not checked (`verify_queued`, by
`troth.trace.signing.verify_listed_envelope`, which troth.trace does not export: review 73i,
listed 1): the rotation hashed it while its key was current (a record made while the node's
clock ran ahead, dated after the rotation, was set aside KEY_RETIRED: review 73e, tickets4 1).
Its attestation's window is checked as ever (a listed row of the year 2100 is set aside), and
it is dated anew when signed again: a row the thief holding the key planted before the
rotation, dated after it, is carried as one it dated before always was (a routine rotation
trusts the key it retires: `--compromised` is for a stolen one), and its date never reaches
the log (review 73i, refuted).

The ticket's type is `.v3` since that fix (review 72j, rotated 3): a `.v2` ticket, written
before it, may list a thief's envelope of a key retired before (planted under the retired key's
column). A `.v2` ticket still verifies (rows queued across an upgrade are not lost), but lists
only an envelope signed by a key of the change its signer's rotation retired the key of, as
the outbox and a later rotation carrying it read it: the rows it carried from an earlier ticket
are set aside when they come up, the agent's and a thief's being told apart by nothing a `.v2`
ticket holds. That change is the one before the signer's, or the one before that when the
rotation went to another key type (`_retired_change`: two changes in one transaction, the
first an intermediate one under which no key of the agent's signed; taken for the retired
key's, every row the ticket listed was set aside: review 72o, tickets3 1). The intermediate
change is told by what it commits to, a key of another type than its own primary key (the
key the next change reveals), never by the time (review 72s, retired 1).

A rotation makes the ticket anew: the hashes it leaves, and those of the ticket before it
(verified under the key it retires) still queued; none left, it deletes it. A compromised
rotation deletes it (the key that signed it is the thief's: the rows it lists, of a key
retired before, are set aside when they come up, as before); a rotation of either kind with
no row queued leaves it, which then lists nothing (its key no longer current). The ticket
commits with the
rotation, and each row signed again with its own transaction: a process killed between the
steps loses nothing (the rows stay queued, the ticket in node.db).

    trace_outbox_resign   per agent: hashes (32 bytes each, concatenated), signature, and the
                          attestation of the key that signed it (made on first use)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from troth import limits
from troth.crypto import PublicKey, sha256, verify_signature
from troth.errors import CryptoError, TraceError, TraceFailure
from troth.identity import Signer, VerifiedIdentity
from troth.storage import SqliteDatabase
from troth.trace.dsse import pae
from troth.trace.record import Disclosure
from troth.trace.signing import (
    VerifiedRecord,
    resolve_key,
    verify_envelope,
    verify_listed_envelope,
)

__all__ = [
    "LEGACY_TICKET_TYPE",
    "TICKET_TYPE",
    "Listed",
    "drop_ticket",
    "read_ticket",
    "ticket_key",
    "verify_queued",
    "write_ticket",
]

TICKET_TYPE: Final = "application/vnd.troth.outbox-resign.v3"
"""The payload type a ticket's signature is over (with the agent's digest and the hashes of
envelopes, each naming the key its rotation retired; `.v1` listed payload hashes: review 71o,
wave2e 1; `.v2`, `LEGACY_TICKET_TYPE`, any envelope: review 72j, rotated 3)."""
LEGACY_TICKET_TYPE: Final = "application/vnd.troth.outbox-resign.v2"
"""The type of a ticket written before review 72e, tickets 1 (module docstring): read as listing
only envelopes of the key its rotation retired."""
_HASH: Final = 32
_RETIRED: Final = (
    "signed by a key an older change retired: never signed again by the current key "
    "(troth.trace.outbox_rotation)"
)
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS trace_outbox_resign (agent BLOB PRIMARY KEY, "
    "hashes BLOB NOT NULL, signature BLOB NOT NULL, attestation BLOB NOT NULL)"
)
_SIZE: Final = "SELECT length(CAST(hashes AS BLOB)) FROM trace_outbox_resign WHERE agent = ?"
_EXISTS: Final = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'trace_outbox_resign'"


@dataclass(frozen=True, slots=True)
class Listed:
    """The hashes of envelopes an agent's ticket lists (`read_ticket`), and of which key."""

    hashes: frozenset[bytes] = frozenset()
    change: int | None = None
    """None: of any key of the agent's (a `.v3` ticket); else only of a key attested under this
    change (a `.v2` ticket: the key its rotation retired; review 72j, rotated 3)."""

    def __bool__(self) -> bool:
        return bool(self.hashes)

    def lists(self, digest: bytes, change: int | None) -> bool:
        """Whether an envelope hashing to `digest`, signed by a key attested under `change`
        (None: not one of the agent's history), is listed."""
        return digest in self.hashes and (self.change is None or change == self.change)


def _signed(agent: bytes, hashes: bytes, kind: str = TICKET_TYPE) -> bytes:
    return pae(kind, agent + hashes)


def write_ticket(db: SqliteDatabase, agent: bytes, signer: Signer, hashes: Sequence[bytes]) -> None:
    """`agent`'s ticket: `hashes`, signed by `signer` (its key after a rotation), in the
    caller's transaction; none: the ticket deleted."""
    if not hashes:
        drop_ticket(db, agent)
        return
    db.execute(_SCHEMA)
    blob = b"".join(hashes)
    db.execute(
        "INSERT OR REPLACE INTO trace_outbox_resign (agent, hashes, signature, attestation) "
        "VALUES (?, ?, ?, ?)",
        (agent, blob, signer.sign(_signed(agent, blob)), signer.attestation),
    )


def drop_ticket(db: SqliteDatabase, agent: bytes) -> None:
    """Delete `agent`'s ticket (in the caller's transaction)."""
    if db.run_rows(_EXISTS):
        db.execute("DELETE FROM trace_outbox_resign WHERE agent = ?", (agent,))


def ticket_key(db: SqliteDatabase, agent: bytes) -> bytes | None:
    """The attestation of the key that signed `agent`'s ticket (None: none), unverified: a
    signer whose history does not hold it predates the rotation that wrote it."""
    if not db.run_rows(_EXISTS):
        return None
    row = db.fetch_one(
        "SELECT CAST(attestation AS BLOB) FROM trace_outbox_resign WHERE agent = ?", (agent,)
    )
    return None if row is None else bytes(row[0])


def read_ticket(db: SqliteDatabase, identity: VerifiedIdentity) -> Listed:
    """The hashes `identity`'s ticket lists when it is signed by a key attested under the
    current change of `identity`'s history; none otherwise (no ticket, one of a key retired
    since or of no change of the history, a signature that does not verify, a malformed one:
    its rows are set aside as they come up). At most TRACE_OUTBOX_RECORDS hashes are read:
    a longer one is none (a writer of node.db's). A `.v2` ticket lists only envelopes of a key
    of the change before its signer's (module docstring; review 72j, rotated 3)."""
    agent = identity.identifier.digest
    if not db.run_rows(_EXISTS):
        return Listed()
    size = db.fetch_one(_SIZE, (agent,))
    if size is None or not 0 < int(size[0] or 0) <= limits.TRACE_OUTBOX_RECORDS * _HASH:
        return Listed()  # none, or more than an outbox holds (a writer of node.db's)
    row = db.fetch_one(
        "SELECT CAST(hashes AS BLOB), CAST(signature AS BLOB), CAST(attestation AS BLOB) "
        "FROM trace_outbox_resign WHERE agent = ?",
        (agent,),
    )
    if row is None:
        return Listed()
    hashes, signature, attestation = (bytes(value) for value in row)
    try:
        epoch = resolve_key(identity, attestation)  # made under a change in the history
        if not epoch.is_current or len(hashes) % _HASH:
            return Listed()
        current = _of_current_type(epoch.key, signature, agent, hashes)
    except (TraceError, CryptoError):
        return Listed()
    listed = frozenset(hashes[n : n + _HASH] for n in range(0, len(hashes), _HASH))
    return Listed(listed, None if current else _retired_change(identity, epoch.change))


def _of_current_type(key: PublicKey, signature: bytes, agent: bytes, hashes: bytes) -> bool:
    """Whether `signature` by `key` is a `.v3` ticket's (False: a `.v2` one's); CryptoError
    when it is neither."""
    try:
        verify_signature(key, signature, _signed(agent, hashes))
    except CryptoError:
        verify_signature(key, signature, _signed(agent, hashes, LEGACY_TICKET_TYPE))
        return False
    return True


def _retired_change(identity: VerifiedIdentity, change: int) -> int:
    """The change whose key the rotation that made `change` (a change `identity`'s history
    holds) retired: the one before it, unless that one committed to a key of another type than
    its own primary key (its next-key digest, type-prefixed, is of the key `change` reveals:
    the history's verification checked it), then the one before that. troth.identity's
    `rotate` commits to a key of another type only in the first of the two changes of a
    rotation to another key type, an intermediate one no key of the agent's signed under (its
    primary key, the committed one, is in any copy of the vault from before): every other
    change commits to a key of its own type (review 72o, tickets3 1; read from the commitment,
    not from the two changes' created_at, which nothing in the format ties: review 72s, retired
    1). A history checkpointed at `change` holds none before it: the one before (its keys
    resolve under no change of the history: their rows are set aside)."""
    position = change - identity.first_index
    if position < 1:
        return change - 1
    made, before = identity.changes[position].body, identity.changes[position - 1].body
    intermediate = before.primary_key.key_type is not made.primary_key.key_type
    return change - 2 if intermediate else change - 1


def verify_queued(
    envelope: bytes,
    identity: VerifiedIdentity,
    attestation: bytes,
    disclosures: Mapping[str, Disclosure],
    listed: Callable[[], Listed],
) -> VerifiedRecord:
    """A queued row's `envelope` verified as `identity`'s, for the outbox to sign it again
    with the current key: one of a key a rotation retired only when `listed()` (the agent's
    ticket, `read_ticket`) lists it (TraceError ATTESTATION_STALE), then whenever it is dated:
    the rotation hashed it while its key was current (a record made while the node's clock
    ran ahead, dated after the rotation, was set aside KEY_RETIRED: review 73e, tickets4 1).
    TraceError for any other failure, as `verify_envelope` raises it."""
    try:
        checked = verify_envelope(
            envelope, signer=identity, attestation=attestation, disclosures=disclosures
        )
    except TraceError as exc:
        if exc.reason is not TraceFailure.KEY_RETIRED or sha256(envelope) not in listed().hashes:
            raise
        checked = verify_listed_envelope(
            envelope, signer=identity, attestation=attestation, disclosures=disclosures
        )
    if not checked.epoch.is_current and not listed().lists(sha256(envelope), checked.epoch.change):
        raise TraceError(TraceFailure.ATTESTATION_STALE, _RETIRED)
    return checked
