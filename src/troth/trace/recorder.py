"""Recording as an agent: number, date, sign and append records, keeping the agent's chain.

`TraceRecorder.record(content)` is the one call an agent (or a gate, a broker, a span
processor) makes per step: it takes the next seq and the previous record's hash, signs with the
agent's signing key and returns once the log has the record durably. Records of one recorder
enter the log in the order they were signed, whatever the threads. A second writer for the same
agent (another process) makes the log refuse one of them (CHAIN_BROKEN): the recorder then
reloads the chain head from the log and signs again, in the log's chain turn (a flock on
`<log>.chains`, taken only after such a refusal: a record that is not refused costs nothing
more), until the record is in or MAX_TRACE_CHAIN_RETRY_SECONDS passed (review 56d,
concurrency 1); as it does after a rotation the log knew first (ATTESTATION_STALE), with a
signer asked afresh, up to three times. Given a signer source, it asks it again
every 60 s and after `renew()`, so a rotation elsewhere is picked up.

Decision traces: `escalate` (the agent asks a human, naming who) and `resolve` (the human's own
recorder: the outcome, what they considered and why, linked to the escalation).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from troth import limits
from troth.clock import Clock
from troth.crypto import sha256
from troth.errors import KeyNotFound, NotFound, TraceError, TraceFailure, TrothError
from troth.identity import Identifier, Signer
from troth.storage.peers import Turns
from troth.trace.log import Receipt, TraceLog
from troth.trace.record import (
    Decision,
    Kind,
    Links,
    TraceRecord,
    disclosure_value,
    resolution_id,
)
from troth.trace.signing import (
    KeyEpoch,
    RecordContent,
    VerifiedRecord,
    open_envelope,
    resolve_key,
    sign_next,
)

__all__ = ["RandomPool", "SignerCache", "TraceRecorder"]

_RETRIED: Final = frozenset({TraceFailure.CHAIN_BROKEN, TraceFailure.ATTESTATION_STALE})
_ATTEMPTS: Final = 3
_RENEW_BEFORE: Final = 3600  # seconds before a signing key's expiry to ask for a new one
_REFRESH_EVERY: Final = 60  # seconds between asking the source again (a rotation elsewhere)
_POOL_BYTES: Final = 4096  # os.urandom drawn at a time (a record takes 16-80 bytes)


class RandomPool:
    """os.urandom drawn 4 KiB at a time, each byte handed out once: every os.urandom call
    lets go of the GIL, which, with other threads running, is a switch between threads per
    record. A forked child draws afresh (every pool is emptied in the child, through
    os.register_at_fork), so two processes never hand out the same bytes. Not thread-safe:
    its recorder's lock guards it."""

    __slots__ = ("_data", "_forks", "_offset")

    def __init__(self) -> None:
        self._data = b""
        self._offset = 0
        self._forks = _forks[0]

    def __call__(self, count: int) -> bytes:
        offset = self._offset
        if offset + count > len(self._data) or self._forks != _forks[0]:
            self._data = os.urandom(max(_POOL_BYTES, count))
            self._forks = _forks[0]
            offset = 0
        self._offset = offset + count
        return self._data[offset : offset + count]


_forks = [0]  # how many forks made this process (os.getpid per draw is a system call)


def _forked() -> None:
    _forks[0] += 1


os.register_at_fork(after_in_child=_forked)


class SignerCache:
    """An agent's signer and its resolved key. Given a source (time -> Signer), it asks it
    again every `_REFRESH_EVERY` s, within `_RENEW_BEFORE` s of the key's expiry and after
    `renew()`, so a rotation elsewhere is picked up. Not thread-safe: its user's lock guards
    it (TraceRecorder, troth.trace.outbox.TraceOutbox)."""

    __slots__ = ("_epoch", "_fetched_at", "_signer", "_source")

    def __init__(self, signer: Signer | Callable[[int], Signer]) -> None:
        self._source = signer if callable(signer) and not isinstance(signer, Signer) else None
        self._signer: Signer | None = signer if isinstance(signer, Signer) else None
        self._epoch: KeyEpoch | None = None
        self._fetched_at: int | None = None

    def renew(self) -> None:
        """Ask the source again at the next `current`."""
        self._fetched_at = None

    def stale(self, now: int, *, renew: bool = False) -> bool:
        """Whether `current` would ask the source (a caller that must not hold its lock while
        the source works asks it itself and hands the answer to `adopt`)."""
        signer = self._signer
        return self._source is not None and (
            signer is None
            or renew
            or signer.expires_at - now < _RENEW_BEFORE
            or self._fetched_at is None
            or now - self._fetched_at >= _REFRESH_EVERY
        )

    def adopt(self, fresh: Signer, now: int) -> tuple[Signer, KeyEpoch]:
        """Keep `fresh`, what the source answered at `now`; it and its key."""
        epoch = self._epoch
        if fresh is not self._signer or epoch is None:
            epoch = resolve_key(fresh.identity, fresh.attestation)
        self._signer, self._epoch, self._fetched_at = fresh, epoch, now
        return fresh, epoch

    def current(self, now: int, *, renew: bool = False) -> tuple[Signer, KeyEpoch]:
        """The signer to sign with at `now`, and its key (TraceError when there is none)."""
        if self._source is not None and self.stale(now, renew=renew):
            return self.adopt(self._source(now), now)
        signer = self._signer
        if signer is None:
            raise TraceError(TraceFailure.ATTESTATION_INVALID, "no signing key for the agent")
        if self._epoch is None:
            self._epoch = resolve_key(signer.identity, signer.attestation)
        return signer, self._epoch


def _chain_head(log: TraceLog, agent: Identifier) -> tuple[int, bytes] | None:
    """The seq and hash of `agent`'s latest record in `log`."""
    head = log.head(agent)
    return None if head is None else head[:2]


class TraceRecorder:
    """Signs records as one identity and appends them to one log."""

    def __init__(
        self,
        log: TraceLog,
        signer: Signer | Callable[[int], Signer],
        *,
        clock: Clock,
        random: Callable[[int], bytes] | None = None,
    ) -> None:
        """`random` (n -> n random bytes) is an os.urandom pool unless given."""
        self.log = log
        self.clock = clock
        self._signers = SignerCache(signer)
        self._random = RandomPool() if random is None else random
        self._lock = threading.Lock()
        self._head: tuple[int, bytes, int] | None = None
        self._head_loaded = False

    @property
    def agent(self) -> Identifier:
        return self._signers.current(self.clock.now())[0].identity.identifier

    def record(
        self,
        content: RecordContent,
        *,
        chain: bytes | None = None,
        source: Identifier | None = None,
    ) -> Receipt:
        """Sign `content` as the next record of this agent and append it (durably). `source`
        (the member a record is made for) bounds nothing here: the append is durable when this
        returns, nothing is held waiting."""
        del source
        with self._lock:
            signed = self._signed(content, False)
            pending = self.log.enqueue(signed, chain=chain)
        self.log.wait(pending)
        try:
            return pending.result()
        except TrothError as exc:
            with self._lock:
                self._head_loaded = False  # what the log holds decides the next seq
            if not isinstance(exc, TraceError) or exc.reason not in _RETRIED:
                raise
            return self._again(content, chain, signed.record, exc)

    def _again(
        self, content: RecordContent, chain: bytes | None, refused: TraceRecord, exc: TraceError
    ) -> Receipt:
        """Sign `content` again and append it, after `refused` (its first signing) was refused
        with `exc`, in the log's chain turn (`<log>.chains`, `troth.storage.peers.Turns`), held
        until it is accepted. CHAIN_BROKEN is tried again while the agent's head in the log is
        another than the one the refused record was signed on (another writer's record came
        first; a refusal on the head as it stands is no race), for at most
        MAX_TRACE_CHAIN_RETRY_SECONDS, the turn's wait included: another process's recorder
        retrying waits its turn instead of breaking this one's chain again, and a first try
        elsewhere can come in between only once per try of theirs (review 56d, concurrency 1:
        three tries in all, and processes revoking at once failed for revocations that stood).
        ATTESTATION_STALE is tried at most `_ATTEMPTS` times in all, with a signer asked
        afresh."""
        deadline = time.monotonic() + limits.MAX_TRACE_CHAIN_RETRY_SECONDS
        agent = refused.agent
        on = None if refused.seq == 0 else (refused.seq - 1, refused.prev)  # (sign_next's)
        path = self.log.store.path
        turns = Turns(path.with_name(f"{path.name}.chains"), limits.MAX_TRACE_CHAIN_RETRY_SECONDS)
        stale = 0
        try:
            with turns.turn():
                while True:
                    if exc.reason is TraceFailure.ATTESTATION_STALE:
                        stale += 1
                        if stale >= _ATTEMPTS:
                            raise exc
                    elif time.monotonic() >= deadline or _chain_head(self.log, agent) == on:
                        raise exc
                    with self._lock:
                        if not self._head_loaded:
                            self._head, self._head_loaded = self.log.head(agent), True
                        on = None if self._head is None else self._head[:2]
                        pending = self.log.enqueue(self._signed(content, True), chain=chain)
                    self.log.wait(pending)
                    try:
                        return pending.result()
                    except TrothError as again:
                        with self._lock:
                            self._head_loaded = False
                        if not isinstance(again, TraceError) or again.reason not in _RETRIED:
                            raise
                        exc = again
        finally:
            turns.close()

    def record_many(self, contents: Sequence[RecordContent]) -> list[Receipt]:
        """Sign and append several records in as few commits as possible (all or the first
        refusal raised; records before it are kept)."""
        with self._lock:
            signed = [self._signed(content, False) for content in contents]
            pendings = self.log.enqueue_many(signed)
        for pending in pendings:
            self.log.wait(pending)
        if any(pending.error is not None for pending in pendings):
            with self._lock:
                self._head_loaded = False
        return [pending.result() for pending in pendings]

    def _signed(self, content: RecordContent, renew: bool) -> VerifiedRecord:
        """`_sign`, asking the source again once when the key is gone (a rotation elsewhere
        deleted it before this recorder's next `_REFRESH_EVERY` look)."""
        try:
            return self._sign(content, renew=renew)
        except KeyNotFound:
            if renew:
                raise
            return self._sign(content, renew=True)

    def _sign(self, content: RecordContent, *, renew: bool) -> VerifiedRecord:
        now = self.clock.now()
        signer, epoch = self._signers.current(now, renew=renew)
        if not self._head_loaded:
            self._head = self.log.head(signer.identity.identifier)
            self._head_loaded = True
        verified = sign_next(signer, content, self._head, now=now, epoch=epoch, random=self._random)
        record = verified.record
        self._head = (record.seq, verified.hash, record.time)
        return verified

    def renew(self) -> None:
        """Ask the signer source again before the next record (after a rotation)."""
        with self._lock:
            self._signers.renew()

    # -- decision traces ---------------------------------------------------------------------

    def escalate(
        self,
        to: Identifier,
        *,
        question: Any,
        reasoning: Any = None,
        parent: str | None = None,
        conversation: str | None = None,
        trace: str | None = None,
    ) -> Receipt:
        """Record that this agent asks `to` (a human's identity) to decide: `question`, the
        question and context it presents (the record's `inputs`), and why it escalates
        (`reasoning`)."""
        values: dict[str, Any] = {"inputs": question}
        if reasoning is not None:
            values["reasoning"] = reasoning
        links = Links(parent=parent, trace=trace, conversation=conversation)
        return self.record(
            RecordContent(Kind.ESCALATION, values=values, links=links, escalation_to=to)
        )

    def resolve(
        self,
        escalation: str,
        *,
        of: Identifier,
        outcome: str,
        considered: Any,
        reasoning: Any,
        conversation: str | None = None,
        trace: str | None = None,
    ) -> Receipt:
        """Record, as this (human's) identity, the decision on escalation record `escalation`
        of agent `of` (record ids are unique per agent: the link names whose record it is):
        the outcome, what was considered (`inputs`) and why (`reasoning`). The link names the
        escalation's record hash too, as the log holds it (a record of version 3), so the
        answer is to that question and no other record under the id (review 53i,
        resolutions 1); one the log does not hold is refused as it appends. Its id is derived
        from that hash, so a second answer to the escalation is refused (TraceError REPLAYED:
        one answer per escalation, review 53l, resolutions 1). The same outcome again (a redo
        after a crash that followed the answer's commit) answers the receipt of the one the log
        holds; another answer is refused, naming it (review 54c, crash 1): another outcome, or
        the same with other inputs, reasoning, trace or conversation (review 54l, trace 2: a
        redo was matched on its outcome alone, and another answer told it stood)."""
        values = {"inputs": considered, "reasoning": reasoning}
        try:
            asked: bytes | None = sha256(open_envelope(self.log.find(escalation, of).envelope)[1])
        except NotFound:
            asked = None  # (refused at append: no escalation in the log)
        links = Links(
            parent=escalation,
            trace=trace,
            conversation=conversation,
            parent_agent=of,
            parent_hash=asked,
        )
        answer = RecordContent(
            Kind.RESOLUTION, values=values, decision=Decision(outcome), links=links
        )
        if asked is not None and (held := self._resolved(asked, answer)) is not None:
            return held
        try:
            return self.record(answer)
        except TraceError as exc:  # answered meanwhile (another process's redo)
            if exc.reason is not TraceFailure.REPLAYED or asked is None:
                raise
            if (held := self._resolved(asked, answer)) is None:
                raise
            return held

    def _resolved(self, asked: bytes, answer: RecordContent) -> Receipt | None:
        """The receipt of this agent's resolution of the escalation whose record hash is
        `asked`, if the log holds one that is `answer` (its outcome, trace, conversation and
        the values still disclosed: a redacted one is not compared); None when it holds none;
        TraceError REPLAYED when it holds another answer (its outcome named) or another record
        under the id (review 54c, crash 1; review 54l, trace 2)."""
        record_id = resolution_id(asked)
        agent = self.agent
        if agent not in self.log.agents_of(record_id):
            return None
        stored = self.log.find(record_id, agent)
        record, payload, _, _ = open_envelope(stored.envelope)
        if record.kind is not Kind.RESOLUTION or record.decision is None:
            raise TraceError(
                TraceFailure.REPLAYED,
                f"record {record_id} of {agent} is not a resolution",
                record=record_id,
            )
        outcome = answer.decision.outcome if answer.decision is not None else None
        disclosed = self.log.disclosures(record_id, agent)
        if (
            record.decision.outcome != outcome
            or record.links.trace != answer.links.trace
            or record.links.conversation != answer.links.conversation
            or any(
                disclosure_value(answer.values[name]) != kept.value
                for name, kept in disclosed.items()
                if name in answer.values
            )
        ):
            raise TraceError(
                TraceFailure.REPLAYED,
                f"the escalation is already resolved: {record.decision.outcome} (record "
                f"{record_id}, index {stored.index}), another answer than this one; one answer "
                "per escalation",
                record=record_id,
            )
        return Receipt(stored.index, record_id, sha256(payload), stored.leaf)
