"""The client side of a trace service: records queued, signed in batches, each delivered once
and in order (docs/traces.md, "Collection"). Sans-IO: the caller sends the batches it is given
and hands back the answers (troth.node.services.trace.TraceClient pumps it over a channel).

- `add(content)` refuses what signing would refuse of the record itself
  (`troth.trace.signing.check_content`: review 75c, batcher 1), gives the record its id and
  time at once and queues it, its values as they are then (their canonical JSON, checked and
  signed as such: a caller changing a value it handed in leaves the record as recorded;
  review 74k, records 3); a full queue
  (`TRACE_QUEUE_RECORDS`) refuses it (TraceError OVER_LIMIT): an agent that cannot keep its
  audit trail stops, it does not drop records silently.
- `next_batch(now)` signs the queued records in order, chained after the agent's head in the
  service's log, into one submission: at most MAX_TRACE_SUBMIT_RECORDS records and, with the
  attestations, chains and history it carries, at most MAX_SERVICE_MESSAGE bytes. Records are
  signed when they are sent, so a refusal never leaves later ones chained to a record the log
  does not hold: they are signed again after it.
- Until a batch is answered, `next_batch` returns the same batch (the same bytes): a resend
  after a lost answer is answered with the same indices (`Status.ALREADY`), never appended
  twice.
- `answered(receipts)`: delivered records get their index; a record refused because the chain
  moved under it (another writer, a rotation, the clock) is signed again, up to 3 times; a
  record refused for now (`not accepted yet`: troth.trace.submit, TRANSIENT) stays queued and
  goes again after the client's backoff, up to TRACE_TRANSIENT_RETRIES times (review 48n);
  one refused BACKDATED, or TIME_OUT_OF_RANGE past its attempts (a clock is off), stays
  queued, however often (WAITED_OUT);
  any other refusal fails that record (its `error`), and the records after it are signed
  again on the head the answer reports (kept when a batch refused whole reports none;
  `head_reported`: a `per-agent chain broken` answer's "none" is taken, review 55b, head 1).

A record keeps the time it was made unless it waited in the queue more than half the log's
window (MAX_CLOCK_SKEW_SECONDS / 2), or it was made after the time it is signed again (the
signer's clock ran ahead, then was put right: review 69a, outbox 1): then it is dated when it is
signed, since the log accepts only times within MAX_CLOCK_SKEW_SECONDS of its clock
(`resign_time`).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import deque
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Protocol

from troth import limits
from troth.crypto import sha256
from troth.errors import TraceError, TraceFailure
from troth.identity import Identifier, Signer
from troth.trace.record import new_record_id
from troth.trace.signing import (
    ContentError,
    KeyEpoch,
    RecordContent,
    _sign,
    check_content,
    content_id,
    resolve_key,
)
from troth.trace.submit import (
    Head,
    Receipts,
    Submission,
    SubmitResult,
    SubmittedRecord,
    item_size,
)

__all__ = ["Batch", "Batcher", "Queued", "SentBatch", "TraceBatcher", "attempts_after"]

_F = TraceFailure
RESIGNED: Final = frozenset(
    {_F.CHAIN_BROKEN, _F.ATTESTATION_STALE, _F.TIME_REVERSED, _F.TIME_OUT_OF_RANGE}
)
"""Refusals a record is signed again for (the chain moved under it), at most RESIGN_ATTEMPTS
times; any other refusal sets it aside."""
WAITED_OUT: Final = frozenset({_F.BACKDATED, _F.TIME_OUT_OF_RANGE})
"""Refusals a record waits out, queued (the clocks of the log and the agent disagree: the fix
is a clock), signed again (dated when sent) each time it goes, with no limit on the attempts:
the queue's or the outbox's bounds limit what waits; the client waits
TRACE_BACKDATED_WAIT_SECONDS between such batches (review 68i, clock 1 and 5). BACKDATED (a
checkpoint the log signed while its clock ran ahead) waits at once; TIME_OUT_OF_RANGE (the
log's clock ahead or behind now) once its RESIGN_ATTEMPTS are spent."""
RESIGN_ATTEMPTS: Final = 3
WAITING: Final = RESIGN_ATTEMPTS
"""A record's attempts while it waits out a clock (WAITED_OUT; a record signed again has
fewer): a refusal of another kind after the wait counts afresh (review 68r, outbox 3: the
attempts spent on the clock set it aside at the first move of the chain once it was fixed)."""
SEND_LATE: Final = limits.MAX_CLOCK_SKEW_SECONDS // 2
"""A record older than this when it is sent is dated again (the collector allows the skew)."""
SUBMIT_ROOM: Final = 4096
"""The service request's frame around a submission (bytes kept free in a batch)."""
SignerSource = Callable[[int], Signer]


@dataclass(eq=False)
class Queued:
    """A record handed to a trace client: its id and time now; its log index (or the reason
    it was refused) once the service answered."""

    record: str
    time: int
    content: RecordContent = field(repr=False)
    chain: bytes | None = field(default=None, repr=False)
    source: bytes | None = field(default=None, repr=False)
    """The member the record was made on behalf of (its identifier's digest), if any."""
    index: int | None = None
    error: TraceError | None = None
    attempts: int = 0
    waits: int = 0
    """Times the service refused it for now (`not accepted yet`) and it was kept."""
    _encoded: Mapping[str, bytes] | None = field(default=None, repr=False)
    """The canonical JSON of each value as queued (`check_content`: what is signed), read-only;
    the content then holds none (a batcher's; None: the content's values). Private: a caller
    writing into it had bytes no check saw signed (review 75k, batcher2 2)."""
    _settled: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def done(self) -> bool:
        """Whether the service answered for this record (delivered or refused)."""
        return self._settled.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block (a thread, not the event loop) until answered; whether it was."""
        return self._settled.wait(timeout)

    def result(self) -> int:
        """The record's log index; TraceError if it was refused (or is not answered yet)."""
        if self.error is not None:
            raise self.error
        if self.index is None:
            raise TraceError(_F.MALFORMED, "not acknowledged yet", record=self.record)
        return self.index

    def _settle(self, index: int | None, error: TraceError | None) -> None:
        self.index, self.error = index, error
        self._settled.set()


@dataclass(frozen=True, slots=True)
class Batch:
    """A signed submission and the queued records it carries, in order."""

    submission: Submission
    items: tuple[Queued, ...]
    chains: frozenset[bytes]


class SentBatch(Protocol):
    """What a batcher hands its pump: the submission to send."""

    @property
    def submission(self) -> Submission: ...


def attempts_after(reason: TraceFailure | None, attempts: int) -> int | None:
    """A record's attempts once refused `reason` after `attempts`: one more when it is signed
    again (RESIGNED), WAITING when it waits out a clock (WAITED_OUT: BACKDATED at once,
    TIME_OUT_OF_RANGE once its RESIGN_ATTEMPTS are spent), None when it is set aside. A
    record that was WAITING counts afresh."""
    if reason in WAITED_OUT and (reason not in RESIGNED or attempts + 1 >= RESIGN_ATTEMPTS):
        return WAITING
    counted = 0 if attempts >= WAITING else attempts
    if reason in RESIGNED and counted + 1 < RESIGN_ATTEMPTS:
        return counted + 1
    return None


def member_of(
    content: RecordContent, source: Identifier | None, chain: bytes | None
) -> bytes | None:
    """The digest of member `source` a record of `content` is added for (None: none);
    TraceError MALFORMED unless `content` is a RecordContent, `source` an Identifier and
    `chain` bytes, or None (review 75k, batcher2 3-4: a chain of text was queued and failed
    every batch, first in the queue; a content or member of another type raised a raw error)."""
    if not isinstance(content, RecordContent):
        raise ContentError(f"not a record's content: {type(content).__name__}")
    if chain is not None and not isinstance(chain, bytes):
        raise TraceError(_F.MALFORMED, f"a delegation chain is bytes, not {type(chain).__name__}")
    if source is None:
        return None
    if not isinstance(source, Identifier):
        raise TraceError(_F.MALFORMED, f"a member is an Identifier, not {type(source).__name__}")
    return source.digest


def resign_time(made: int, now: int, floor: int) -> int:
    """When a record made (or first signed) at `made` is dated as it is signed again at `now`,
    after a record dated `floor`: when it was made, unless that is more than SEND_LATE ago
    (then `now - SEND_LATE`) or after `now` (the signer's clock ran ahead then and was put
    right: dated when it was made, it would wait out the whole error, and every record after
    it with it; review 69a, outbox 1), and never before `floor`."""
    return max(min(made, now), now - SEND_LATE, floor)


def head_reported(receipts: Receipts) -> bool:
    """Whether `receipts` says where the agent's chain stands in the log: a head, or none when
    a record was delivered or refused for its place in the chain (CHAIN_BROKEN: the log judged
    it against its head, none included). A batch refused whole (an invalid signer) reports no
    head and says nothing of it: the head kept stays. Before review 55b (head 1) "none" was
    always taken for that, so a log that lost every record of the agent (restored from a
    backup, begun afresh) refused each later record, signed again on a head it no longer
    held, for good."""
    return receipts.head is not None or any(
        result.delivered or result.reason is _F.CHAIN_BROKEN for result in receipts.results
    )


def lost_chain(
    result: SubmitResult, chain: bytes | None, carried: Set[bytes], kept: set[bytes]
) -> bool:
    """Whether `result` refuses a record under `chain` as not sent (nor kept) while its batch
    left the chain out, taken for kept by the log: the log lost it (restored, begun afresh),
    so it is forgotten (dropped from `kept`) and the record sent again with it (review 55b,
    chains 1). A batch that carried it (`carried`, their digests): the record's own failure.
    Judged by what the batch carried, not by `kept` (review 55l, chains 1: the first such
    record of a batch made the chain forgotten, and each later one under it, finding it
    forgotten already, was failed for good)."""
    if result.reason is not _F.CHAIN_MISMATCH or chain is None:
        return False
    digest = sha256(chain)
    if digest in carried:
        return False
    kept.discard(digest)
    return True


class Batcher(Protocol):
    """What a trace client pumps (troth.node.services.trace.TraceClient): this in-memory
    `TraceBatcher`, or a node's durable troth.trace.outbox.TraceOutbox."""

    head_known: bool
    held_back: dict[str, Any] | None
    """Why and since when the first queued records wait out a refusal (WAITED_OUT), None when
    the last answer held none back."""
    batch_records: int
    batches: int

    @property
    def in_flight(self) -> bool: ...

    def add(
        self,
        content: RecordContent,
        *,
        chain: bytes | None = None,
        now: int,
        source: Identifier | None = None,
    ) -> Queued: ...

    def pending(self) -> int: ...

    def queued(self) -> int: ...

    def agent(self, now: int) -> Identifier: ...

    def claim(self) -> bool: ...

    def set_head(self, head: Head | None) -> None: ...

    def next_batch(self, now: int, *, reserve: int = 0) -> SentBatch | None: ...

    def replayed(self, receipts: Receipts) -> list[str]: ...

    def answered(
        self, receipts: Receipts, *, now: int, copies: Mapping[str, Any] | None = None
    ) -> None: ...

    def close(self) -> None: ...

    def status(self) -> dict[str, Any]: ...


class TraceBatcher:
    """Queues, signs and tracks one identity's records for a trace service (module
    docstring). `add` may be called from any thread; the rest from one pump."""

    def __init__(
        self,
        signer: SignerSource,
        *,
        queue_size: int = limits.TRACE_QUEUE_RECORDS,
        batch_records: int = limits.MAX_TRACE_SUBMIT_RECORDS,
        max_bytes: int = limits.MAX_SERVICE_MESSAGE - SUBMIT_ROOM,
        random: Callable[[int], bytes] = os.urandom,
        source_percent: int = limits.TRACE_OUTBOX_SOURCE_PERCENT,
        members_percent: int = limits.TRACE_OUTBOX_MEMBERS_PERCENT,
        transient_retries: int = limits.TRACE_TRANSIENT_RETRIES,
    ) -> None:
        if not 1 <= batch_records <= limits.MAX_TRACE_SUBMIT_RECORDS:
            raise ValueError(f"batch_records: 1 to {limits.MAX_TRACE_SUBMIT_RECORDS}")
        self._signer = signer
        self.transient_retries = transient_retries
        self.held_back: dict[str, Any] | None = None
        """Why and since when the first queued records wait out a refusal (WAITED_OUT)."""
        """Times a record refused for now is kept and sent again before it is set aside."""
        self.queue_size = queue_size
        self.source_share = queue_size * source_percent // 100
        """Records of one member (`add(source=)`) the queue holds at most."""
        self.members_share = queue_size * members_percent // 100
        """Records of all members together the queue holds at most (the rest is for records
        made for no member: an expiry, a revocation)."""
        self._by_source: dict[bytes, int] = {}  # records of each member queued or in flight
        self._members = 0  # the sum of _by_source
        self.batch_records = batch_records
        self.max_bytes = max_bytes
        self._random = random
        self._lock = threading.Lock()
        self._queue: deque[Queued] = deque()
        self._in_flight: Batch | None = None
        self._head: Head | None = None
        self.head_known = False
        """Whether the agent's head in the service's log is known (ask it before a batch)."""
        self._kept_chains: set[bytes] = set()  # chains the log keeps: not sent again
        self._epochs: dict[bytes, KeyEpoch] = {}
        self.batches = 0
        """Submissions made (statistics: one request each, resends not counted)."""

    # -- any thread ------------------------------------------------------------------------------

    def add(
        self,
        content: RecordContent,
        *,
        chain: bytes | None = None,
        now: int,
        source: Identifier | None = None,
    ) -> Queued:
        """Queue a record made at `now` (on behalf of member `source`, if any); TraceError
        OVER_LIMIT when the queue, or that member's share of it, is full; what signing refuses
        of the record itself as signing does (`check_content`): MALFORMED (ContentError) for a
        redactable value no export carries, a name not REDACTABLE, a malformed id, a field its
        kind has not, a field of another type, OVER_LIMIT for values together over
        MAX_TRACE_RECORD_DISCLOSURE_BYTES or a payload that could be over
        MAX_TRACE_PAYLOAD_BYTES; MALFORMED for a chain that is no bytes, a member no Identifier
        (`member_of`)."""
        # refused here what signing would refuse (reviews 74s, records3 1-2; 75c batcher 1)
        encoded = MappingProxyType(check_content(content))
        member = member_of(content, source, chain)
        record = content_id(content) or new_record_id(now, self._random(16))  # (75c batcher 3)
        # kept as queued, encoded once: signed as checked, whatever the caller changes
        # meanwhile (review 74k, records 3)
        kept = dataclasses.replace(content, id=record, values={})
        queued = Queued(record, now, kept, chain, member, _encoded=encoded)
        with self._lock:
            if self.pending() >= self.queue_size:
                raise TraceError(
                    _F.OVER_LIMIT,
                    f"{self.queue_size} records wait for the trace service: not recorded",
                )
            if member is not None:
                held = self._by_source.get(member, 0)
                if held >= self.source_share:
                    raise TraceError(
                        _F.OVER_LIMIT,
                        f"{held} records of this member wait for the trace service "
                        f"(TRACE_OUTBOX_SOURCE_PERCENT of {self.queue_size}): not recorded",
                    )
                if self._members >= self.members_share:
                    raise TraceError(
                        _F.OVER_LIMIT,
                        f"{self._members} records of members wait for the trace service "
                        f"(TRACE_OUTBOX_MEMBERS_PERCENT of {self.queue_size}): not recorded",
                    )
                self._by_source[member] = held + 1
                self._members += 1
            self._queue.append(queued)
        return queued

    def _settle(self, queued: Queued, index: int | None, error: TraceError | None) -> None:
        """`queued` answered (delivered at `index`, or refused): its member's place is free, its
        values' bytes let go (the caller may keep it: review 75k, batcher2 6)."""
        queued._encoded = None
        member = queued.source
        if member is not None and not queued.done:  # (its place is freed once)
            with self._lock:
                held = self._by_source.pop(member, 0)
                if held > 1:
                    self._by_source[member] = held - 1
                self._members -= min(held, 1)
        queued._settle(index, error)

    def pending(self) -> int:
        """Records not answered yet (queued or in flight)."""
        flying = 0 if self._in_flight is None else len(self._in_flight.items)
        return len(self._queue) + flying

    def queued(self) -> int:
        """Records waiting to be sent (not in flight)."""
        return len(self._queue)

    @property
    def in_flight(self) -> bool:
        """Whether a batch waits for its answer."""
        return self._in_flight is not None

    # -- the pump ----------------------------------------------------------------------------------

    def set_head(self, head: Head | None) -> None:
        """The agent's head in the service's log (its answer to `head`)."""
        self._head = head
        self.head_known = True

    def next_batch(self, now: int, *, reserve: int = 0) -> Batch | None:
        """The batch to send now: the unanswered one again, else the queued records signed,
        `reserve` bytes of the request kept free (the history windows sent with it) (None:
        nothing to send). Raises TraceError when the signer cannot sign (the records stay
        queued)."""
        if self._in_flight is not None:
            return self._in_flight
        if not self.head_known:
            raise TraceError(_F.CHAIN_BROKEN, "ask the service for the agent's head first")
        with self._lock:
            if not self._queue:
                return None
        signer = self._signer(now)
        epoch = self._epoch(signer)
        head = self._head
        base = len(signer.identity.history) + len(signer.attestation) + 64 + reserve
        items: list[Queued] = []
        records: list[SubmittedRecord] = []
        chains: dict[bytes, bytes] = {}
        size = base
        while len(items) < self.batch_records:
            with self._lock:
                if not self._queue:
                    break
                queued = self._queue[0]
            digest = None if queued.chain is None else sha256(queued.chain)
            new_chain = (
                digest is not None and digest not in chains and digest not in self._kept_chains
            )
            if new_chain and len(chains) >= limits.MAX_TRACE_SUBMIT_CHAINS:
                break
            time = resign_time(queued.time, now, 0 if head is None else head.time)
            seq, prev = (0, None) if head is None else (head.seq + 1, head.hash)
            try:
                verified = _sign(  # its values as checked at `add` (75k batcher2 1)
                    signer,
                    queued.content,
                    queued._encoded,
                    seq,
                    prev,
                    time,
                    epoch,
                    self._random,
                    None,
                )
            except (TraceError, ValueError) as exc:
                if items:  # sign it first in a batch of its own: its failure is its own
                    break
                self._fail_first(exc)
                continue
            submitted = SubmittedRecord(verified.envelope, verified.disclosures)
            grown = size + item_size(submitted) + (len(queued.chain or b"") if new_chain else 0)
            if grown > self.max_bytes:
                if items:
                    break
                self._fail_first(TraceError(_F.OVER_LIMIT, "the record is over the service limit"))
                continue
            with self._lock:
                self._queue.popleft()
            size = grown
            if new_chain and digest is not None and queued.chain is not None:
                chains[digest] = queued.chain
            items.append(queued)
            records.append(submitted)
            head = Head(seq, verified.hash, time)
        if not items:
            return None
        submission = Submission(
            signer.identity.history, (signer.attestation,), tuple(chains.values()), tuple(records)
        )
        self._in_flight = Batch(submission, tuple(items), frozenset(chains))
        self.batches += 1
        return self._in_flight

    def _fail_first(self, exc: Exception) -> None:
        with self._lock:
            queued = self._queue.popleft()
        error = exc if isinstance(exc, TraceError) else TraceError(_F.MALFORMED, str(exc))
        self._settle(queued, None, error.located(index=None, record=queued.record))

    def _epoch(self, signer: Signer) -> KeyEpoch:
        key = sha256(signer.attestation)
        epoch = self._epochs.get(key)
        if epoch is None or epoch.identifier != signer.identity.identifier:
            if len(self._epochs) > 16:
                self._epochs.clear()
            epoch = self._epochs[key] = resolve_key(signer.identity, signer.attestation)
        return epoch

    def replayed(self, receipts: Receipts) -> list[str]:
        """None of its records is signed again while in flight: a REPLAYED is not its own
        resend (troth.trace.replayed, for the durable outbox)."""
        return []

    def answered(
        self, receipts: Receipts, *, now: int | None = None, copies: Mapping[str, Any] | None = None
    ) -> None:
        """Take the service's answer to the batch in flight (module docstring; `now` and
        `copies` are for the Batcher protocol: not used)."""
        batch = self._in_flight
        if batch is None or len(receipts.results) != len(batch.items):
            raise TraceError(_F.MALFORMED, "an answer for no batch, or for another one")
        self._in_flight = None
        again: list[Queued] = []
        refused = False
        held: TraceError | None = None
        for queued, result in zip(batch.items, receipts.results, strict=True):
            if result.delivered:
                self._settle(queued, result.index, None)
                if queued.chain is not None:
                    if len(self._kept_chains) >= limits.TRACE_KEPT_CHAINS:
                        self._kept_chains.clear()  # forgotten chains are only sent again
                    self._kept_chains.add(sha256(queued.chain))
                continue
            if refused and result.reason is _F.CHAIN_BROKEN:
                again.append(queued)  # chained after a refused record: not its own failure
                continue
            refused = True
            if result.transient and queued.waits < self.transient_retries:
                queued.waits += 1  # refused for now: sent again after a backoff (review 48n)
                again.append(queued)
                continue
            if lost_chain(result, queued.chain, batch.chains, self._kept_chains):
                again.append(queued)  # the log lost it: sent again with it (55b, chains 1)
                continue
            attempts = attempts_after(result.reason, queued.attempts)
            if attempts is None:
                self._settle(queued, None, result.error(queued.record))
                continue
            queued.attempts = attempts
            if attempts == WAITING:  # a clock is off: waits (review 68i, clock 2; 68r)
                held = result.error(queued.record)
            again.append(queued)
        with self._lock:
            self._queue.extendleft(reversed(again))
        if head_reported(receipts):  # (a batch refused whole reports none: kept)
            self._head = receipts.head
        self.held_back = held_back(self.held_back, held, 0 if now is None else now)

    def agent(self, now: int) -> Identifier:
        """The identity whose records these are."""
        return self._signer(now).identity.identifier

    def claim(self) -> bool:
        """Whether this pump may send (always: the queue is this object's)."""
        return True

    def close(self) -> None:
        """Nothing to let go (what is queued is lost with this object)."""

    def status(self) -> dict[str, Any]:
        """Records waiting (in memory) and submissions made."""
        return {"queued": self.pending(), "batches": self.batches, "held_back": self.held_back}


def held_back(
    previous: dict[str, Any] | None, refusal: TraceError | None, now: int
) -> dict[str, Any] | None:
    """What a batcher's status says of records waiting out `refusal` (WAITED_OUT; None: the
    last answer held none back): the reason, the log's detail, the record, and since when
    (kept from `previous` while they wait)."""
    if refusal is None:
        return None
    since = now if previous is None else previous["since"]
    return {
        "reason": refusal.reason.value,
        "detail": refusal.detail,
        "record": refusal.record,
        "since": since,
    }
