"""The trace outbox across a rotation of its agent (review 69a, closing review 68r outbox 1).

A row of the outbox signed by a key an older change of the agent's history attested (a key the
rotation retired) is never signed again by the current key (`TraceOutbox._resign` sets it aside,
ATTESTATION_STALE): node.db's writer holding a retired key (a backup from before the rotation)
could otherwise plant a row of its choosing, signed by that key and dated before the rotation,
and have the node sign it as its own, past the log's floor and the key's retirement.

The honest rows queued before a rotation are signed with the new key *in the rotation's own
transaction* (`resign_for_rotation`, run by troth.identity's `rotated_hooks` as the node wires
them): the rotation and the rows signed again commit together or not at all, so a process
killed between them loses nothing (before the commit the old key is still current, and the
rows are as they were) and launders nothing (a row written after the commit with a retired
key was not there to be signed). Only a row signed by the key current before the rotation is
signed again: one signed by a key an earlier rotation retired, queued meanwhile, is a thief's
(the outbox never signs it again: set aside when it comes up), and the rotation does not
launder it either. Each row is signed again as it stands (same id, content,
commitments and salts) dated within the new key's window, and the agent's rows from the first
of them on are marked stale: they are signed again, chained on the log's head, when they are
sent. A row that does not verify as the agent's is left as it is (set aside when it comes up).

A `--compromised` rotation signs none of them again (review 69o, wave1c 1): the key current
before it is the one a thief's copy holds, and a row signed by it may be the thief's, planted
in node.db (the node cannot tell which); signed by the new key, dated anew, it would pass as
the agent's own record. Each is set aside in the rotation's transaction instead
(ATTESTATION_STALE, detail `signed by a key a compromised rotation retired`): kept in
`trace_outbox_refused` for the operator to read (`troth trace outbox`), never sent. Honest
records queued just before such a rotation are lost to the log with them (deny when in doubt).

Rows set aside (`trace_outbox_refused`) are not signed again at a rotation: one signed before
it and requeued after it is set aside again (ATTESTATION_STALE). The rows are read a page at a
time, in the types their columns declare (a text stored by a writer of node.db blocks no
rotation: review 70b, outbox 1), and at most MAX_ROTATION_RESIGNED_RECORDS of them are signed
in its transaction, holding node.db's write lock (about 3 s with a software key), not a full
outbox's 45 s (every other writer of node.db failing past its busy timeout: review 70b, outbox
3). The rest stay queued, stale, listed in a ticket the rotation signs with the new key (one
signature; only their positions, envelopes and attestations read, each envelope hashed and
listed when it names the retired key, not verified: review 72e, tickets 1): the outbox signs
them again as they come up, a listed row of the retired key told from a thief's by its verified
envelope's hash (troth.trace.outbox_tickets; review 71g, outbox2 1: the rotation was refused
OVER_LIMIT, every routine rotation with it while a trace service was out of reach; review 71o,
wave2e 1: the row's `hash` column was listed as stored). A process that queues a record after
the commit with a signer it fetched before asks for its signer again: the rotation records, in
its transaction, how many changes it retired the key of (`trace_outbox_rotated`), and `add`
checks it in its own (review 72e, tickets 2). Before, such a record was signed by the retired
key when the vault still held it (a token's, deleted just after the commit; kept when the
process is killed then, until `forget_retired` runs): acknowledged, dated after the rotation,
it never verified as the agent's, and was set aside when it came up.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import Final

from troth import limits
from troth.crypto import sha256
from troth.errors import DecodeError, StorageError, TraceError, TraceFailure
from troth.identity import Signer, VerifiedIdentity
from troth.storage import SqliteDatabase
from troth.trace.batcher import resign_time
from troth.trace.dsse import decode_envelope
from troth.trace.outbox_store import OutboxRow, OutboxStore, mark_rotated
from troth.trace.outbox_tickets import Listed, drop_ticket, read_ticket, write_ticket
from troth.trace.signing import KeyEpoch, keyid_of, resign_record, resolve_key, verify_envelope
from troth.trace.stored import decode_disclosures

__all__ = ["resign_for_rotation"]

_F = TraceFailure
_COMPROMISED = "signed by a key a compromised rotation retired: kept, never signed again"


def resign_for_rotation(
    db: SqliteDatabase,
    before: VerifiedIdentity,
    signer: Callable[[], Signer],
    now: int,
    *,
    compromised: bool = False,
) -> int:
    """Sign with `signer()` (the agent's key after a rotation at `now`; asked only when the
    agent has queued rows) the first MAX_ROTATION_RESIGNED_RECORDS queued rows of the agent
    signed by the key current `before` the rotation, inside the caller's transaction (the
    rotation's: module docstring), and list the rest in the agent's ticket, signed by it
    (troth.trace.outbox_tickets: signed again by the outbox as they come up; review 71g,
    outbox2 1); how many were signed again. A `compromised` rotation signs none: it sets them
    aside, and deletes the ticket (module docstring; review 69o, wave1c 1)."""
    digest = before.identifier.digest
    if not _has_outbox(db):
        return 0
    mark_rotated(db, digest, before.change_count)  # review 72e, tickets 2
    if not _queued(db, digest):
        return 0
    store = OutboxStore(db)
    if compromised:
        _set_aside_compromised(store, before, now)
        return 0
    of_key_before = _KeyBefore(before)
    listed = read_ticket(db, before)  # the rows an earlier rotation left, still to sign
    fresh: Signer | None = None
    epoch: KeyEpoch | None = None  # the new key's, resolved once (review 70b, outbox 5)
    first: int | None = None
    done = 0
    taken = 0
    left: int | None = None  # where the rows left to the outbox start (review 71g, outbox2 1)
    with store.transaction():
        for row in _rows(store, digest):
            if fresh is None:
                fresh = signer()
            if not of_key_before(row.attestation):
                continue  # the new key's, or a key retired before (a thief's, if queued)
            if taken >= limits.MAX_ROTATION_RESIGNED_RECORDS:
                left = row.pos  # the rest: listed in the ticket, not signed here
                break
            taken += 1
            try:
                disclosures = decode_disclosures(row.disclosures)
                record = verify_envelope(  # under the history whose key it is: in node.db
                    row.envelope,  # while it was current, whatever its date (review 73e,
                    signer=before,  # tickets4 1: one dated after the rotation was set aside)
                    attestation=row.attestation,
                    disclosures=disclosures,
                ).record
                epoch = epoch or resolve_key(fresh.identity, fresh.attestation)
                verified = resign_record(
                    fresh,
                    record,
                    disclosures,
                    seq=record.seq,  # as the envelope says, not the row's column (review
                    prev=record.prev,  # 70o, outbox2 1: a writer of node.db chose the seq)
                    time=resign_time(row.made, now, 0),
                    epoch=epoch,
                )
            except (TraceError, ValueError):
                continue  # not the agent's: set aside when it comes up
            if store.replace(digest, row, verified):
                done += 1
                first = row.pos if first is None else first
        if left is not None or listed:
            fresh = fresh or signer()
            kept, start = _left(store, digest, of_key_before, left, listed)
            write_ticket(db, digest, fresh, kept)
            first = start if first is None or (start is not None and start < first) else first
        if first is not None:
            store.mark_stale(digest, first)
    return done


def _left(
    store: OutboxStore,
    agent: bytes,
    of_key_before: _KeyBefore,
    left: int | None,
    listed: Listed,
) -> tuple[list[bytes], int | None]:
    """The hashes of `agent`'s rows the outbox signs again after the rotation: those of the
    key current before it from position `left` on (None: none), and those `listed` by the
    ticket before (still queued as it listed them); where the first is. Each hash is the
    SHA-256 of the row's envelope as stored, never its `hash` column (a writer's choice:
    review 71o, wave2e 1). Only positions, envelopes and attestations are read (a page at a
    time): an outbox full of the retired key's rows costs the rotation no signature, and
    hashing its TRACE_OUTBOX_BYTES (review 71g, outbox2 1). Each hash is listed once, at most
    TRACE_OUTBOX_RECORDS of them, the rows in order (what `read_ticket` takes; an outbox holds
    no more of the agent's own): rows a writer of node.db planted past the bound (copies of an
    envelope, junk naming the key) pushed the ticket past it, and it listed none (review 72j,
    rotated 2)."""
    kept: dict[bytes, None] = {}  # in order, each once
    start: int | None = None
    after = -1 if listed or left is None else left - 1  # none listed: from `left` on only
    while page := store.db.run_rows(_KEYS, (agent, after, limits.MAX_TRACE_SUBMIT_RECORDS)):
        for pos, envelope, attestation in page:
            envelope, attestation = bytes(envelope), bytes(attestation)
            digest = sha256(envelope)
            mine = left is not None and pos >= left and of_key_before(attestation)
            mine = mine and _names(envelope, attestation)  # review 72e, tickets 1
            carried = not mine and digest in listed.hashes  # a .v2 ticket's: of one change
            carried = carried and listed.lists(digest, of_key_before.named(envelope, attestation))
            if (mine or carried) and digest not in kept:
                if len(kept) >= limits.TRACE_OUTBOX_RECORDS:
                    return list(kept), start  # the rest set aside as they come up
                kept[digest] = None
                start = pos if start is None else start
        after = page[-1][0]
    return list(kept), start


def _names(envelope: bytes, attestation: bytes) -> bool:
    """Whether `envelope` names the key `attestation` attests (its DSSE keyid: decoded, not
    verified). The outbox verifies a listed envelope under the key it names; one naming
    another key of the agent (a key an earlier rotation retired, a thief's copy of it) under
    the column of the key the rotation retires, that column set to the other key after the
    rotation, was verified under it and signed by the new key (review 72e, tickets 1)."""
    try:
        return decode_envelope(envelope)[1] == keyid_of(attestation)
    except DecodeError:
        return False


class _KeyBefore:
    """Whether a row's attestation names the key current `before` the rotation (not one an
    earlier change attested, nor one of no change of the agent's), each distinct attestation
    verified once (at most MAX_TRACE_SUBMIT_KEYS remembered): an outbox's rows share one or two,
    and verifying each row's again was three quarters of a compromised rotation's time in
    node.db's write lock (review 70b, outbox 5)."""

    def __init__(self, before: VerifiedIdentity) -> None:
        self._before = before
        self._known: dict[bytes, KeyEpoch | None] = {}

    def __call__(self, attestation: bytes) -> bool:
        epoch = self._epoch(attestation)
        return epoch is not None and epoch.is_current

    def named(self, envelope: bytes, attestation: bytes) -> int | None:
        """The change of the history the key `envelope` names (by `attestation`, its keyid's)
        was attested under (None: it names no key of the history, or another one's)."""
        epoch = self._epoch(attestation) if _names(envelope, attestation) else None
        return None if epoch is None else epoch.change

    def _epoch(self, attestation: bytes) -> KeyEpoch | None:
        if attestation in self._known:
            return self._known[attestation]
        try:
            epoch: KeyEpoch | None = resolve_key(self._before, attestation)
        except TraceError:
            epoch = None
        if len(self._known) >= limits.MAX_TRACE_SUBMIT_KEYS:
            self._known.clear()
        self._known[attestation] = epoch
        return epoch


def _set_aside_compromised(store: OutboxStore, before: VerifiedIdentity, now: int) -> None:
    """Set aside (ATTESTATION_STALE, kept in `trace_outbox_refused`) every queued row of the
    agent signed by the key current `before` a compromised rotation at `now`, and mark the
    rows after the first of them stale (chained on it: set aside too when they come up if
    they are no better)."""
    digest = before.identifier.digest
    first: int | None = None
    of_key_before = _KeyBefore(before)
    with store.transaction():
        for row in _rows(store, digest):  # a page read whole before its rows move
            if not of_key_before(row.attestation):
                continue  # a key retired before, or not the agent's: set aside when it comes up
            if store.set_aside(
                digest,
                row.pos,
                row.hash,
                reason=_F.ATTESTATION_STALE.value,
                detail=_COMPROMISED,
                now=now,
            ):
                first = row.pos if first is None else first
        if first is not None:
            store.mark_stale(digest, first)
        drop_ticket(store.db, digest)  # signed by the thief's key: its rows set aside


_OUTBOX_TABLE: Final = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'trace_outbox'"
_QUEUED: Final = "SELECT 1 FROM trace_outbox WHERE agent = ? LIMIT 1"
_KEYS: Final = (
    "SELECT pos, CAST(envelope AS BLOB), CAST(attestation AS BLOB) FROM trace_outbox "
    "WHERE agent = ? AND pos > ? ORDER BY pos LIMIT ?"
)
_SEEN: weakref.WeakSet[SqliteDatabase] = weakref.WeakSet()
"""The databases whose outbox table this process found: their rows looked up at once."""


def _has_outbox(db: SqliteDatabase) -> bool:
    """Whether node.db has an outbox (none made: nothing to do). Its table is looked up by
    name until this process found it (~5 us in a rotation). Review 70g, perf 1: the row's
    look-up on a node.db with no outbox failed its prepare, "no such table", and that failure
    cost ~17 us of each rotation's ~380 (the floor's whole durable write is ~32)."""
    if db not in _SEEN:
        if not db.run_rows(_OUTBOX_TABLE):
            return False
        _SEEN.add(db)
    return True


def _queued(db: SqliteDatabase, agent: bytes) -> bool:
    """Whether `agent` has a queued row (an indexed read, ~4 us; node.db's outbox found by
    `_has_outbox`). A table found, then gone (a copy without one put in place) reads as none,
    as before: nothing else is remembered."""
    try:
        return bool(db.run_rows(_QUEUED, (agent,)))
    except StorageError as exc:
        if "no such table" not in str(exc):
            raise
    _SEEN.discard(db)
    return False


def _rows(store: OutboxStore, agent: bytes) -> Iterator[OutboxRow]:
    """`agent`'s queued rows in order, read a page (MAX_TRACE_SUBMIT_RECORDS) at a time: an
    outbox full of them (TRACE_OUTBOX_BYTES) is never in memory at once."""
    after = -1
    while page := store.first(agent, limits.MAX_TRACE_SUBMIT_RECORDS, after=after):
        yield from page
        after = page[-1].pos
