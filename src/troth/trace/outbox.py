"""A durable trace outbox: the records a node sends to a trace service, kept in the node's
database until the service's receipt says they are in its log (docs/traces.md, "Where records
go"; docs/storage.md, "Trace outbox"). `TraceOutbox` is a `Batcher` for
troth.node.services.trace.TraceClient, as the in-memory troth.trace.batcher.TraceBatcher is.

- `add(content)` signs the record, chained after the agent's last queued record (or, with
  none queued, after the head the service last reported), and commits it to the outbox before
  it returns: an acknowledged record survives a crash (SIGKILL) of the process. The outbox is
  bounded (TRACE_OUTBOX_RECORDS, TRACE_OUTBOX_BYTES, queued and set-aside records together):
  past it `add` raises TraceError OVER_LIMIT, so an agent that cannot keep its audit trail
  stops; nothing is dropped. Records of refusals (kind `denial`) may fill only
  TRACE_OUTBOX_DENIAL_PERCENT of it: one member's refused requests cannot take the room the
  node's other records need (a denial past it is not recorded; its request is refused anyway).
  The records made on behalf of one member (`add(source=)`) may fill only
  TRACE_OUTBOX_SOURCE_PERCENT of it, counted from the rows: one member's operations, allowed
  or refused, leave the rest to the others; the members' records together at most
  TRACE_OUTBOX_MEMBERS_PERCENT, so what the node does on its own (an expiry, a revocation)
  always has room.
- `next_batch(now)` reads the first queued records in order and sends their stored bytes:
  after a crash the batch that was in flight goes again byte for byte, and the service answers
  what it already holds `already`, with its index (exactly once).
- `answered(receipts)`: a delivered record (appended or already there) leaves the outbox in
  the transaction that reads the answer. A record refused for now (`not accepted yet`: the
  node's feed copy not fresh, a checkpoint it cannot attest yet; troth.trace.submit,
  TRANSIENT) stays queued as signed, and the records after it too: the batch goes again,
  byte for byte, after the client's backoff, up to TRACE_TRANSIENT_RETRIES times in a process
  (review 48n; a SIGKILL loses nothing: the rows are as they were). A record refused because
  the chain moved under it
  (CHAIN_BROKEN, ATTESTATION_STALE, TIME_REVERSED, TIME_OUT_OF_RANGE: another writer, a
  rotation, the time it waited) is signed again, up to 3 times. A record refused BACKDATED
  (the log's clock ran ahead when it signed its newest checkpoint), or TIME_OUT_OF_RANGE once
  its 3 attempts are spent (the log's clock is off now): WAITED_OUT, waits queued, with the
  records after it, and is signed again (dated when sent) each time it goes, with no attempt
  counted, until the log takes it (a refusal of another kind after the wait counts its 3
  attempts afresh: review 68r, outbox 3); the outbox's bounds limit what waits, and
  `status()["held_back"]` says why and since when (review 68i, clock 1 and 5). Any other refusal
  (or the third) sets the record aside in `trace_outbox_refused` with its reason, kept and
  reported, never sent again.
- **A refused record and the chain.** Each record names the seq and hash of the one before
  it, and the log appends a record only after its predecessor: the records queued after a
  refused one are refused too (CHAIN_BROKEN, not counted as their failure) and could never be
  appended as signed. They are marked stale and signed again, in order, chained on the head
  the answer reports, when they come up for sending: same id, content, commitments and salts;
  new seq, prev, time and key (`resign_record`). So a refusal blocks nothing after it, but
  the records after it are delivered with other bytes than `add` first signed (their ids are
  unchanged). Only a row whose envelope verifies as the agent's (its attestation's key, its
  signature, its disclosures) is signed again; any other is set aside: a writer of node.db
  without the agent's key gets nothing signed (review 55b, outbox 1); nor is a row signed by
  a key an older change retired (set aside ATTESTATION_STALE): the rotation signed the honest
  ones again in its transaction (troth.trace.outbox_rotation; review 69a, outbox 2), or,
  past MAX_ROTATION_RESIGNED_RECORDS, listed them in a ticket the new key signed: such a
  row is signed again when its verified envelope's hash is listed (troth.trace.outbox_tickets;
  reviews 71g, outbox2 1, and 71o, wave2e 1). A stale record is never one the log may hold:
  a record becomes stale only when an answer shows that it, or one before it, is not in the
  log.
- A record signed again keeps its time unless it is older than half the log's window
  (MAX_CLOCK_SKEW_SECONDS / 2), or later than now (made while the node's clock ran ahead:
  review 69a, outbox 1): then it is dated when it is signed again (`resign_time`). Records
  that waited longer than the window (a node down for a while) are refused TIME_OUT_OF_RANGE
  when first sent and go again re-dated.

**Disclosed values** (review 46e). A row holds the record's disclosures until it is
delivered: every change runs with secure_delete on, and once a delivery deleted rows the
write-ahead log of node.db (whose frames still hold the rows' old pages) is truncated
(`OutboxStore.scrub`): by a delivery that leaves nothing queued, else at most every
SCRUB_SECONDS, and when the outbox is opened (a process killed in between). Best effort: a
reader holding the log leaves it to the next of them, to `troth trace redact`, or to the
node's clean stop (SQLite checkpoints and deletes the log when its last connection closes).
`redact_outbox` deletes a value from a record still queued or set aside (`troth trace
redact`): it is then delivered without it.

Only one process sends an outbox at a time: `claim()` takes an exclusive lock beside the
database (`<node.db>.trace-outbox`, dropped with the process even on SIGKILL); any process may
`add`. A row changes only if it still has the hash the change was decided on.

Locks: this process's writers queue on a lock before BEGIN (SQLite's busy wait is coarse),
except a caller already inside a transaction on the node's database, which joins it: a broker
appends its audit record inside the operation's transaction, so the record commits, or rolls
back, with the operation. The signer source (which may create a signing key in the database)
is asked outside every lock; the other locks guard memory only, so no thread holds one while
it waits for the database.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from troth import limits
from troth.crypto import sha256
from troth.errors import ConflictError, KeyNotFound, TraceError, TraceFailure
from troth.identity import Identifier, Signer
from troth.storage import SqliteDatabase
from troth.storage.peers import SoleHolder
from troth.trace.batcher import (
    SUBMIT_ROOM,
    WAITING,
    Queued,
    SignerSource,
    attempts_after,
    head_reported,
    held_back,
    lost_chain,
    member_of,
    resign_time,
)
from troth.trace.outbox_redact import redact_outbox, scrub_quietly
from troth.trace.outbox_store import OutboxRow, OutboxStore, Tail, row_size
from troth.trace.outbox_tickets import read_ticket, ticket_key, verify_queued
from troth.trace.record import Kind
from troth.trace.recorder import RandomPool, SignerCache
from troth.trace.replayed import logged_index
from troth.trace.signing import (
    KeyEpoch,
    RecordContent,
    VerifiedRecord,
    resign_record,
    resolve_key,
    sign_next,
)
from troth.trace.stored import decode_disclosures
from troth.trace.submit import (
    Head,
    Receipts,
    Status,
    Submission,
    SubmitResult,
    SubmittedRecord,
    item_size,
)

__all__ = ["OutboxBatch", "TraceOutbox", "redact_outbox", "scrub_quietly"]  # the last two:
# troth.trace.outbox_redact's, re-exported

_F = TraceFailure
_T = TypeVar("_T")
SCRUB_SECONDS: Final = 5
"""While records stay queued, a delivery truncates node.db's WAL at most this often (seconds);
a delivery that leaves none queued always does (module docstring, "Disclosed values")."""


class _SignerBehind(Exception):
    """A row the outbox is to sign again was signed by a rotation since its signer was
    fetched (review 70b, outbox 7), or one is added after it (review 72e, tickets 2): the
    transaction is rolled back, the signer asked for again."""


@dataclass(frozen=True, slots=True)
class _Sent:
    pos: int
    hash: bytes
    record: str
    attempts: int
    chain: bytes | None
    size: int  # the row's when read: a redaction since changes it (`TraceOutbox.next_batch`)


@dataclass(frozen=True, slots=True)
class _Bound:
    """Rows and bytes `held` against a share of the outbox's bounds (`what`: which share)."""

    held: tuple[int, int]
    records: int
    stored: int
    what: str
    of: str = ""
    """Whose records `held` counts (" of this member"; "": every record)."""

    def check(self, size: int) -> None:
        """TraceError OVER_LIMIT if one more record (of `size` bytes; 0: not signed yet) is
        past the share."""
        records, stored = self.held
        which = f" ({self.what})" if self.what else ""
        if records >= self.records:
            raise TraceError(
                _F.OVER_LIMIT,
                f"the trace outbox holds {records} records{self.of} (TRACE_OUTBOX_RECORDS){which}: "
                "not recorded",
            )
        if size and stored + size > self.stored:
            raise TraceError(
                _F.OVER_LIMIT,
                f"the trace outbox holds {stored} bytes{self.of} (TRACE_OUTBOX_BYTES){which}: "
                "not recorded",
            )


@dataclass(frozen=True, slots=True)
class OutboxBatch:
    """A submission of queued records, and which rows (position and hash) it carries."""

    submission: Submission
    items: tuple[_Sent, ...]


class TraceOutbox:
    """One identity's durable queue of records for a trace service (module docstring). `add`
    may be called from any thread (and process); the rest from the one pump that `claim`ed
    it."""

    head_known: bool = True  # it chains on what it holds: it never asks the service first

    def __init__(
        self,
        db: SqliteDatabase,
        agent: Identifier,
        signer: SignerSource,
        *,
        batch_records: int = limits.MAX_TRACE_SUBMIT_RECORDS,
        max_bytes: int = limits.MAX_SERVICE_MESSAGE - SUBMIT_ROOM,
        max_records: int = limits.TRACE_OUTBOX_RECORDS,
        max_stored: int = limits.TRACE_OUTBOX_BYTES,
        denial_percent: int = limits.TRACE_OUTBOX_DENIAL_PERCENT,
        source_percent: int = limits.TRACE_OUTBOX_SOURCE_PERCENT,
        members_percent: int = limits.TRACE_OUTBOX_MEMBERS_PERCENT,
        random: Callable[[int], bytes] | None = None,
        transient_retries: int = limits.TRACE_TRANSIENT_RETRIES,
    ) -> None:
        if not 1 <= batch_records <= limits.MAX_TRACE_SUBMIT_RECORDS:
            raise ValueError(f"batch_records: 1 to {limits.MAX_TRACE_SUBMIT_RECORDS}")
        self.transient_retries = transient_retries
        """Times a record refused for now is kept and sent again before it is set aside."""
        self._waits: dict[str, int] = {}  # per record id: refusals for now in this process
        self.store = OutboxStore(db)
        with self.store.transaction():  # what an earlier version changed counts as it is
            self.store.recount()
        scrub_quietly(self.store)  # a process killed after a delivery, before its scrub
        self.identifier = agent
        self._agent = agent.digest
        self.batch_records = batch_records
        self.max_bytes = max_bytes
        self.max_records = max_records
        self.max_stored = max_stored
        self.denial_percent = denial_percent
        self.source_percent = source_percent
        self.members_percent = members_percent
        self._source = signer
        self._signers = SignerCache(signer)
        self._random = RandomPool() if random is None else random
        # locks, none held while waiting for the database (module docstring, "Locks")
        self._signers_lock = threading.Lock()  # the signer cache
        self._random_lock = threading.Lock()  # the random pool (while signing: CPU only)
        self._memo = threading.Lock()  # the records this process waits for
        self._writer = threading.Lock()  # this process's writers queue here, not on SQLite
        self._waiting: weakref.WeakValueDictionary[str, Queued] = weakref.WeakValueDictionary()
        self._in_flight: OutboxBatch | None = None
        self._kept_chains: set[bytes] = set()  # chains the log keeps: not sent again
        self._sender = SoleHolder(db.path.with_name(f"{db.path.name}.trace-outbox"))
        self.batches = 0
        """Submissions made (statistics: one request each, resends not counted)."""
        self.refused = 0
        """Records this process set aside."""
        self._scrubbed_at: int | None = None  # when a delivery last truncated the WAL
        self.held_back: dict[str, Any] | None = self.store.held(agent.digest)
        """Why and since when the first queued records wait out a refusal (WAITED_OUT: a
        clock is off; review 68i, clock 1), None when the last answer held none back; kept in
        node.db, so a restart keeps it (review 68r, outbox 2)."""

    # -- any thread ----------------------------------------------------------------------------

    def agent(self, now: int) -> Identifier:
        """The identity whose records these are."""
        return self.identifier

    def add(
        self,
        content: RecordContent,
        *,
        chain: bytes | None = None,
        now: int,
        source: Identifier | None = None,
    ) -> Queued:
        """Sign a record made at `now` (on behalf of member `source`, if any) and commit it to
        the outbox; TraceError OVER_LIMIT when the outbox, or that member's share of it, is
        full, MALFORMED for a content signing refuses (ContentError), a chain that is no bytes,
        a member no Identifier (`member_of`: review 75k, batcher2 3-4)."""
        agent = self._agent
        member = member_of(content, source, chain)
        _, verified = self._signing(
            now,
            self._signer(now),
            lambda signer, epoch, told: self._append(
                agent, signer, epoch, content, chain, now, member, told
            ),
        )
        queued = Queued(verified.record.id, verified.record.time, content, chain)
        with self._memo:
            self._waiting[queued.record] = queued
        return queued

    def _append(
        self,
        agent: bytes,
        signer: Signer,
        epoch: KeyEpoch,
        content: RecordContent,
        chain: bytes | None,
        now: int,
        source: bytes | None,
        told: bool,
    ) -> VerifiedRecord:
        rotated, held = self.store.rotated(agent), signer.identity.change_count
        if rotated >= held:  # a rotation retired its key since it was fetched: asked again
            if told:  # (review 72e, tickets 2); a count past the history: review 73e refuted
                raise TraceError(
                    _F.ATTESTATION_STALE,
                    f"the signer predates a rotation: node.db's trace_outbox_rotated says "
                    f"{rotated} changes retired, the agent's history holds {held} (until its "
                    "next rotation writes it again)",
                )
            raise _SignerBehind
        bounds = [self._bound(self.store.usage(), 100, "")]
        if content.kind is Kind.DENIAL:  # refusals leave the rest to what the node does
            bounds.append(
                self._bound(
                    bounds[0].held,
                    self.denial_percent,
                    f"{self.denial_percent}% of it for denials: TRACE_OUTBOX_DENIAL_PERCENT",
                )
            )
        if source is not None:  # one member's records leave the rest to the others
            bounds.append(
                self._bound(
                    self.store.members_usage(),
                    self.members_percent,
                    f"{self.members_percent}% of it for members: TRACE_OUTBOX_MEMBERS_PERCENT",
                )
            )
            bounds.append(
                self._bound(
                    self.store.source_usage(source),
                    self.source_percent,
                    f"{self.source_percent}% of it for one member: TRACE_OUTBOX_SOURCE_PERCENT",
                    " of this member",
                )
            )
        for bound in bounds:
            bound.check(0)
        tail = self.store.tail(agent)
        after = None if tail is None else (tail.seq, tail.hash, tail.time)
        with self._random_lock:  # (a content signing refuses: ContentError, MALFORMED)
            verified = sign_next(signer, content, after, now=now, epoch=epoch, random=self._random)
        size = row_size(verified, chain)
        for bound in bounds:
            bound.check(size)
        stale = tail is not None and tail.stale  # chained on a record to be signed again
        try:
            self.store.insert(agent, verified, made=now, chain=chain, stale=stale, source=source)
        except ConflictError:
            raise TraceError(
                _F.REPLAYED, "a record with this id is queued or set aside in the outbox"
            ) from None
        return verified

    def _bound(self, held: tuple[int, int], percent: int, what: str, of: str = "") -> _Bound:
        most_records, most_stored = self.max_records, self.max_stored
        return _Bound(held, most_records * percent // 100, most_stored * percent // 100, what, of)

    def pending(self) -> int:
        """Records not delivered yet (queued or in flight; not those set aside)."""
        return self.store.pending(self._agent)

    def queued(self) -> int:
        """Records waiting to be sent (not in flight)."""
        flying = 0 if self._in_flight is None else len(self._in_flight.items)
        return max(0, self.pending() - flying)

    @property
    def in_flight(self) -> bool:
        """Whether a batch waits for its answer."""
        return self._in_flight is not None

    # -- the pump --------------------------------------------------------------------------------

    def claim(self) -> bool:
        """Become the one process that sends this outbox (whether it is)."""
        return self._sender.take()

    def close(self) -> None:
        """Let another process send the outbox (what is queued stays queued)."""
        self._in_flight = None
        self._sender.close()

    def set_head(self, head: Head | None) -> None:
        """The agent's head in the service's log (where the next record chains on when none
        is queued)."""
        with self._unit():
            self.store.set_head(self._agent, head)

    def next_batch(self, now: int, *, reserve: int = 0) -> OutboxBatch | None:
        """The batch to send now: the unanswered one again, else the first queued records (the
        stale ones signed again first), `reserve` bytes of the request kept free (the history
        windows sent with it). None: nothing to send. The unanswered batch is read
        again when one of its rows changed since (`redact_outbox`: a value deleted while the
        service did not answer was sent again, for as long as it did not; review 46f, outbox
        1)."""
        if self._in_flight is not None:
            if not self._changed_since_read(self._in_flight):
                return self._in_flight
            self._in_flight = None  # read again below, as the rows are now
        signer, epoch = self._signer(now)
        agent = self._agent
        rows = self.store.first(agent, self.batch_records)
        if any(row.stale for row in rows):
            if self._behind(signer, rows):  # by a rotation after this signer was fetched
                signer, epoch = self._signer(now, renew=True)
            (signer, epoch), failed = self._signing(
                now,
                (signer, epoch),
                lambda signer, epoch, renewed: self._resign(agent, signer, epoch, now, renewed),
            )
            self._settle((), failed)
            rows = self.store.first(agent, self.batch_records)
        history = signer.identity.history
        size = len(history) + 64 + reserve
        keys: dict[bytes, bytes] = {}
        chains: dict[bytes, bytes] = {}
        records: list[SubmittedRecord] = []
        items: list[_Sent] = []
        for row in rows:
            if row.stale:
                break
            key = sha256(row.attestation)
            new_key = key not in keys
            if new_key and len(keys) >= limits.MAX_TRACE_SUBMIT_KEYS:
                break
            digest = None if row.chain is None else sha256(row.chain)
            new_chain = digest is not None and digest not in chains
            new_chain = new_chain and digest not in self._kept_chains
            if new_chain and len(chains) >= limits.MAX_TRACE_SUBMIT_CHAINS:
                break
            try:
                submitted = SubmittedRecord(row.envelope, decode_disclosures(row.disclosures))
            except TraceError as exc:
                if items:
                    break
                self._set_aside_now(agent, row, exc, now)
                return None
            grown = size + item_size(submitted)
            grown += len(row.attestation) + 8 if new_key else 0
            grown += len(row.chain or b"") + 8 if new_chain else 0
            if grown > self.max_bytes:
                if items:
                    break
                over = TraceError(_F.OVER_LIMIT, "the record is over the service limit")
                self._set_aside_now(agent, row, over, now)
                return None
            size = grown
            if new_key:
                keys[key] = row.attestation
            if new_chain and digest is not None and row.chain is not None:
                chains[digest] = row.chain
            records.append(submitted)
            items.append(_Sent(row.pos, row.hash, row.record, row.attempts, row.chain, row.size))
        if not items:
            return None
        submission = Submission(
            history, tuple(keys.values()), tuple(chains.values()), tuple(records)
        )
        self._in_flight = OutboxBatch(submission, tuple(items))
        self.batches += 1
        return self._in_flight

    def _changed_since_read(self, batch: OutboxBatch) -> bool:
        """Whether a row of `batch` is gone or has another size than when it was read (a
        redaction changes a row's size, never its hash)."""
        sizes = self.store.sizes(self._agent, [(item.pos, item.hash) for item in batch.items])
        return any(sizes.get(item.pos) != item.size for item in batch.items)

    def _resign(
        self, agent: bytes, signer: Signer, epoch: KeyEpoch, now: int, renewed: bool
    ) -> list[tuple[str, TraceError]]:
        """Sign the first stale records again, in order, each chained on the record before it
        (or on the head the service reported): at most a batch of them. The records that
        cannot be signed are set aside (and returned). _SignerBehind, unless the signer was
        just `renewed`, when a row read here was signed again by a rotation since the signer
        was fetched (the caller asks for it again: review 70b, outbox 7)."""
        failed: list[tuple[str, TraceError]] = []
        before = self.store.head(agent)
        rows = self.store.first(agent, self.batch_records)
        if not renewed and self._behind(signer, rows):  # as the rows stand in this
            raise _SignerBehind  # transaction
        listed = functools.cache(lambda: read_ticket(self.store.db, signer.identity))  # the
        # rotation's ticket, read when needed
        for row in rows:
            if not row.stale:
                before = Tail(row.seq, row.hash, row.time)
                continue
            seq, prev, floor = (
                (0, None, 0) if before is None else (before.seq + 1, before.hash, before.time)
            )
            try:
                disclosures = decode_disclosures(row.disclosures)
                # the agent's own, as stored: a row planted or edited in node.db by a writer
                # without the agent's key is never signed by it (review 55b, outbox 1)
                # of a key a rotation retired: only when its ticket lists it (the rotation
                # signed the other honest rows again: troth.trace.outbox_rotation; any other
                # is a thief's, review 68r, outbox 1), verified (review 71o, wave2e 1)
                record = verify_queued(
                    row.envelope, signer.identity, row.attestation, disclosures, listed
                ).record
                verified = resign_record(
                    signer,
                    record,
                    disclosures,
                    seq=seq,
                    prev=prev,
                    time=resign_time(row.made, now, floor),
                    epoch=epoch,
                )
            except (TraceError, ValueError) as exc:
                error = _error(exc).located(index=None, record=row.record)
                if self._set_aside(agent, row.pos, row.hash, error, now):
                    failed.append((row.record, error))
                continue
            self.store.replace(agent, row, verified)
            before = Tail(verified.record.seq, verified.hash, verified.record.time)
        return failed

    def _behind(self, signer: Signer, rows: Iterable[OutboxRow]) -> bool:
        """Whether `signer` predates a rotation since it was fetched: a stale row signed
        again by it (`_signed_since`), or the agent's ticket (troth.trace.outbox_tickets)
        written by it, signed by a key of a change the signer's history does not hold (its
        rows, of the key it retired, would be set aside as of a retired key no ticket lists:
        review 71g, outbox2 1)."""
        if _signed_since(signer, rows):
            return True
        key = ticket_key(self.store.db, self._agent)
        return key is not None and _not_held(signer, key)

    def replayed(self, receipts: Receipts) -> list[str]:
        """The ids of the batch in flight's records `receipts` refuses REPLAYED: the client
        asks the service for the log's copy of each (troth.trace.replayed; review 71g,
        outbox2 2)."""
        batch = self._in_flight
        if batch is None or len(receipts.results) != len(batch.items):
            return []
        pairs = zip(batch.items, receipts.results, strict=True)
        return [item.record for item, result in pairs if result.reason is _F.REPLAYED]

    def answered(
        self, receipts: Receipts, *, now: int, copies: Mapping[str, Any] | None = None
    ) -> None:
        """Take the service's answer to the batch in flight (module docstring); `copies`: per
        record id refused REPLAYED, the service's `prove` answer for it (a record delivered
        when it holds the same record: troth.trace.replayed; review 71g, outbox2 2)."""
        batch = self._in_flight
        if batch is None or len(receipts.results) != len(batch.items):
            raise TraceError(_F.MALFORMED, "an answer for no batch, or for another one")
        if copies:
            receipts = self._logged(batch, receipts, copies, now)
        agent = self._agent
        delivered: list[tuple[str, int | None]] = []
        failed: list[tuple[str, TraceError]] = []
        carried = {sha256(chain) for chain in batch.submission.chains}
        held: TraceError | None = None
        with self._unit():
            refused = False
            stale_from: int | None = None
            for item, result in zip(batch.items, receipts.results, strict=True):
                if result.delivered:
                    self._waits.pop(item.record, None)
                    if self.store.delete(agent, item.pos, item.hash, item.record):
                        delivered.append((item.record, result.index))
                    if item.chain is not None:
                        self._keep_chain(sha256(item.chain))
                    continue
                if refused and result.reason is _F.CHAIN_BROKEN:
                    continue  # chained after a refused record: not its own failure
                refused = True
                if result.transient and self._wait(item.record):
                    continue  # refused for now: kept as signed, sent again (review 48n)
                if lost_chain(result, item.chain, carried, self._kept_chains):
                    continue  # the log lost the chain: sent again with it (55b, chains 1)
                if stale_from is None:
                    stale_from = item.pos
                attempts = attempts_after(result.reason, item.attempts)
                if attempts is not None:  # signed again when sent; WAITING: a clock is off,
                    # kept (review 68i, clock 1 and 5), a refusal after it counts afresh (68r)
                    self.store.retry(agent, item.pos, item.hash, attempts)
                    held = result.error(item.record) if attempts == WAITING else held
                    continue
                error = result.error(item.record)
                if self._set_aside(agent, item.pos, item.hash, error, now):
                    failed.append((item.record, error))
            if stale_from is not None:
                self.store.mark_stale(agent, stale_from)
            if head_reported(receipts):  # (a batch refused whole reports none: kept)
                self.store.set_head(agent, receipts.head)
            waiting = held_back(self.held_back, held, now)
            if waiting != self.held_back:
                self.store.set_held(agent, waiting)
        self._in_flight = None
        self.held_back = waiting
        if delivered and self._scrub_due(now):  # the rows' old pages are in the WAL's frames
            self._scrubbed_at = now if scrub_quietly(self.store) else self._scrubbed_at
        if any(r.reason is _F.ATTESTATION_STALE for r in receipts.results):
            with self._signers_lock:
                self._signers.renew()  # rotated: sign again with the newest key
        self._settle(delivered, failed)

    def _logged(
        self, batch: OutboxBatch, receipts: Receipts, copies: Mapping[str, Any], now: int
    ) -> Receipts:
        """`receipts` with each REPLAYED whose log copy in `copies` is the record sent, signed
        by a key of the agent's history (troth.trace.replayed), answered ALREADY at its
        index. The signer is asked for again (rare: only on such an answer), so a copy signed
        by a key of a change after the one it held is judged by the agent's whole history."""
        identity = self._signer(now, renew=True)[0].identity
        results = list(receipts.results)
        for n, (item, result) in enumerate(zip(batch.items, results, strict=True)):
            if result.reason is not _F.REPLAYED or item.record not in copies:
                continue
            sent = batch.submission.records[n].envelope
            index = logged_index(copies[item.record], sent, identity)
            if index is not None:
                results[n] = SubmitResult(Status.ALREADY, index=index)
        return dataclasses.replace(receipts, results=tuple(results))

    def _wait(self, record: str) -> bool:
        """Whether `record`, refused for now, is kept to be sent again: at most
        `transient_retries` times in this process (a new process counts again: the record
        stays queued), then it is set aside as refused for good (review 48n, bound 1)."""
        waits = self._waits.pop(record, 0) + 1
        if waits > self.transient_retries:
            return False
        if len(self._waits) >= limits.TRACE_QUEUE_RECORDS:  # (ids of rows gone elsewhere)
            self._waits.clear()
        self._waits[record] = waits
        return True

    def _settle(
        self,
        delivered: Iterable[tuple[str, int | None]],
        failed: Iterable[tuple[str, TraceError]],
    ) -> None:
        """Answer the records this process made (after the transaction that decided it)."""
        answers: list[tuple[Queued | None, int | None, TraceError | None]] = []
        with self._memo:
            for record, index in delivered:
                answers.append((self._waiting.pop(record, None), index, None))
            for record, refusal in failed:
                answers.append((self._waiting.pop(record, None), None, refusal))
        for queued, index, answer in answers:
            if queued is not None:
                queued._settle(index, answer)

    def _set_aside_now(self, agent: bytes, row: OutboxRow, exc: TraceError, now: int) -> None:
        """Set aside the first queued record, which cannot be sent as it is (the records after
        it are signed again)."""
        error = exc.located(index=None, record=row.record)
        with self._unit():
            done = self._set_aside(agent, row.pos, row.hash, error, now)
            if done:
                self.store.mark_stale(agent, row.pos)
        if done:
            self._settle((), [(row.record, error)])

    def _set_aside(
        self, agent: bytes, pos: int, digest: bytes, error: TraceError, now: int
    ) -> bool:
        done = self.store.set_aside(
            agent, pos, digest, reason=error.reason.value, detail=error.detail, now=now
        )
        self.refused += int(done)
        return done

    def _scrub_due(self, now: int) -> bool:
        """Whether a delivery at `now` truncates node.db's WAL: when it left nothing queued
        for the agent, or SCRUB_SECONDS after the last truncation (a checkpoint costs an
        fsync, ~15-20 ms: once per batch of a busy outbox would tax the storage thread)."""
        last = self._scrubbed_at
        return last is None or now - last >= SCRUB_SECONDS or not self.store.pending(self._agent)

    def _keep_chain(self, digest: bytes) -> None:
        if len(self._kept_chains) >= limits.TRACE_KEPT_CHAINS:
            self._kept_chains.clear()  # forgotten chains are only sent again
        self._kept_chains.add(digest)

    # -- helpers ---------------------------------------------------------------------------------

    @contextmanager
    def _unit(self) -> Iterator[None]:
        """One transaction. This process's writers queue on a lock before it (SQLite's busy
        wait is coarse), except a caller already inside a transaction on this database (a
        broker's audit record joins its operation's transaction: taking the lock there could
        wait on a writer that waits on this transaction)."""
        outer = nullcontext() if self.store.db.in_transaction else self._writer
        with outer, self.store.transaction():
            yield

    def _signing(
        self,
        now: int,
        fetched: tuple[Signer, KeyEpoch],
        work: Callable[[Signer, KeyEpoch, bool], _T],
    ) -> tuple[tuple[Signer, KeyEpoch], _T]:
        """`work` with the signer `fetched` at `now`, in one transaction; run again with the
        signer asked for again when a rotation elsewhere deleted its key (KeyNotFound: rows of
        a retired key queued again after it, review 70b outbox 4, as a record added), or
        signed again rows the transaction read (_SignerBehind: review 70b, outbox 7). Run
        again told so (`work`'s last argument: then it sets such rows aside) once an answer is
        no newer change of the agent than the signer before it (a row of a change no answer
        holds: planted), or after MAX_OUTBOX_SIGNER_RENEWALS answers: while each is newer, a
        rotation committed meanwhile (review 70o, outbox2 2: a second one, after the one
        renewal there was, had the agent's honest rows set aside). The signer it ran with,
        and what it returned."""
        told = False
        renewals = 0
        while True:
            try:
                with self._unit():
                    return fetched, work(*fetched, told)
            except (KeyNotFound, _SignerBehind):  # a rotation elsewhere: ask the source again
                if told:
                    raise
                changes = fetched[0].identity.change_count
                fetched = self._signer(now, renew=True)
                renewals += 1
                told = renewals >= limits.MAX_OUTBOX_SIGNER_RENEWALS
                told = told or fetched[0].identity.change_count <= changes

    def _signer(self, now: int, *, renew: bool = False) -> tuple[Signer, KeyEpoch]:
        """The signer at `now`. The source is asked outside every lock: it may write to the
        node's database (a new signing key), and a caller inside a transaction there (a
        broker's audit record) may wait on these locks."""
        with self._signers_lock:
            stale = self._signers.stale(now, renew=renew)
            if not stale:
                signer, epoch = self._signers.current(now)
        if stale:
            fresh = self._source(now)
            with self._signers_lock:
                signer, epoch = self._signers.adopt(fresh, now)
        if signer.identity.identifier != self.identifier:
            raise TraceError(_F.SIGNER_INVALID, "the signer is not the outbox's agent")
        return signer, epoch

    def status(self) -> dict[str, Any]:
        """What the outbox holds for this agent (queued and set aside) and its bounds."""
        agent = self._agent
        row = next((c for c in self.store.counts() if c[0] == agent), (agent, 0, 0, 0, 0))
        refusals = self.store.refused(agent=agent, limit=5)
        return {
            "queued": row[1],
            "queued_bytes": row[2],
            "refused": row[3],
            "refused_bytes": row[4],
            "limit_records": self.max_records,
            "limit_bytes": self.max_stored,
            "batches": self.batches,
            "recent_refusals": [r.to_json() for r in refusals],
            "held_back": self.held_back,
        }


def _signed_since(signer: Signer, rows: Iterable[OutboxRow]) -> bool:
    """Whether a stale row is signed by a key attested under a change `signer`'s history does
    not hold: a rotation since it was fetched signed the row again (in this process or
    another: troth.trace.outbox_rotation), and the signer is asked for again before the rows
    are signed again, not each set aside as made under a change not in the history."""
    return any(row.stale and _not_held(signer, row.attestation) for row in rows)


def _not_held(signer: Signer, attestation: bytes) -> bool:
    """Whether `attestation` is of a change `signer`'s history does not hold."""
    try:
        resolve_key(signer.identity, attestation)
    except TraceError:
        return True
    return False


def _error(exc: Exception) -> TraceError:
    return exc if isinstance(exc, TraceError) else TraceError(_F.MALFORMED, str(exc))
