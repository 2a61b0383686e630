"""The trace log: an append-only RFC 9162 Merkle log of signed records, durable, with group
commit, signed checkpoints and proofs (docs/traces.md). This module appends, checkpoints and
redacts; what is read back (records, proofs, the histories, attestations and chains the log
keeps) is `troth.trace.log_reader.LogReader`, which `TraceLog` inherits.

`append(record)` returns once the record is durable (its transaction committed with
`synchronous = FULL`). Appenders queue their records; the first one to find no commit running
becomes the leader, writes every queued record (up to MAX_TRACE_BATCH) in one transaction and
wakes the others, so concurrent appenders share one fsync. Across processes the leaders take
turns (`troth.storage.peers.Turns` on `<log>.writer`: the next starts within about a millisecond
of the last one's commit, where SQLite's busy handler slept several) and SQLite's write lock
keeps them apart; the Merkle frontier is reloaded when another process has appended.

What the log refuses at append time (TraceError), on top of what `VerifiedRecord` guarantees
(signature, key valid at the record's time): a record id the same agent already has in the
log (REPLAYED; ids are unique per agent, so another agent's record under the id keeps none
out: review 34g, trace 5); a seq
or prev that does not continue the agent's chain (CHAIN_BROKEN); a time before the agent's
previous record (TIME_REVERSED) or more than 300 s from the log's clock (TIME_OUT_OF_RANGE), or
more than 300 s before the log's newest checkpoint (BACKDATED: `troth.trace.backdating`); a
signer history that forks from the stored one (SIGNER_INVALID); a key attested under an older
change than the newest the log (or its node) holds (ATTESTATION_STALE); a chain named "at log"
that the log does not hold or that does not match (CHAIN_MISMATCH).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from troth import limits
from troth.clock import Clock
from troth.credentials import VerifiedCredential
from troth.crypto import sha256
from troth.errors import (
    ArgumentError,
    ConfigError,
    NotFound,
    StorageError,
    TraceError,
    TraceFailure,
    TrothError,
)
from troth.faults import crash_point
from troth.identity import (
    Checkpoints,
    Identifier,
    Signer,
    VerifiedIdentity,
)
from troth.storage.peers import Turns
from troth.trace.backdating import check_not_backdated
from troth.trace.bridge import SignerBridge
from troth.trace.chain_signed import IssuerCheck, check_appended
from troth.trace.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint
from troth.trace.issued_links import note_issued
from troth.trace.log_histories import Observed, keep, observe
from troth.trace.log_identity import bind_log_identity, node_log_identity
from troth.trace.log_reader import LogReader, holding, locate
from troth.trace.log_rows import (
    FRONTIER_SQL,
    agent_head,
    agent_heads,
    known_histories,
    known_history,
    parent_envelope,
    stored_checkpoint,
    stored_disclosures,
    stored_int,
    taken_ids,
    times_of_checkpoints,
)
from troth.trace.merkle import Frontier
from troth.trace.pending import Pending as _Pending
from troth.trace.pending import Receipt, remember, remember_agents
from troth.trace.record import Kind, encode_disclosures
from troth.trace.record_decode import Escalation, Holding, check_resolution, parent_record
from troth.trace.signing import VerifiedRecord, open_envelope, resolve_key
from troth.trace.store import NODE_LEVEL_STRIDE, TraceStore, insert_rows, open_trace_store
from troth.trace.stored import (
    STORED_DIGEST_BYTES,
    StoredEntry,
    StoredRecord,
    SubtreeReader,
    stored_bytes,
    stored_column,
    stored_identifier,
)

if TYPE_CHECKING:
    from troth.node import Node

__all__ = ["LOG_FILE", "Receipt", "StoredEntry", "StoredRecord", "TraceLog", "open_node_log"]

LOG_FILE: Final = "trace.db"
_REDACTING: Final = "redacting"  # meta: set by a redaction's commit, cleared once the WAL is
# truncated (`TraceLog.redact`)
_F = TraceFailure
_NOTE: Final = stored_column("note", limits.MAX_TRACE_CHECKPOINT_BYTES)  # (69m, verify 1)
_IDENTITY: Final = stored_column("value", STORED_DIGEST_BYTES)  # (69s, wave2 1)
_MARK: Final = stored_column("value", STORED_DIGEST_BYTES)  # (70i, leftovers 2)

_ADMIT_CHUNK: Final = 32
"""Records admitted between two INSERTs of a commit: each INSERT lets go of the GIL, so a
thread that is signing does not wait for the whole batch's admission (its signature is done
in ~25 us, then it waits for the GIL)."""

SignerSource = Callable[[int], Signer]
"""The log identity's signer at a time (a node renews the signing key on demand)."""


@dataclass
class _Head:
    seq: int
    hash: bytes
    time: int
    change: int


@dataclass
class _Batch:
    """What one transaction learns and changes while admitting a batch."""

    conn: sqlite3.Connection
    heads: dict[bytes, _Head | None] = field(default_factory=dict)
    changed_heads: set[bytes] = field(default_factory=set)
    ids: dict[tuple[str, bytes], int] = field(default_factory=dict)  # (record id, agent
    # digest) -> index of the records admitted in this batch
    held: dict[str, tuple[tuple[int, bytes], ...]] = field(default_factory=dict)  # per id,
    # the first two admitted under it: (index, agent digest), for version 1 links
    histories: dict[bytes, tuple[int, bytes]] = field(default_factory=dict)
    node_newest: dict[bytes, int] = field(default_factory=dict)
    escalations: dict[tuple[str, bytes], Escalation] = field(default_factory=dict)
    taken: set[tuple[str, bytes]] = field(default_factory=set)
    looked_up: set[bytes] = field(default_factory=set)  # identifiers whose history was read
    new_keys: set[str] = field(default_factory=set)  # cached once the commit succeeds
    new_chains: set[bytes] = field(default_factory=set)
    observed: VerifiedIdentity | None = None  # the last signer `_observe` accepted
    observed_change: int = 0  # and the newest change the log holds for it
    checkpointed_at: int | None = None  # the newest checkpoint's time, read in this transaction


def _holding(state: _Batch, signer: Identifier, record_id: str) -> Holding:
    """`parent_record`'s `holders` at append, for a version 1 link (a record holding one is
    rare): the log's records under `record_id` and those admitted in this batch, every one
    before the record being admitted (`log_reader.holding`)."""
    also = state.held.get(record_id, ())
    held = holding(state.conn, signer, record_id, also=also, earliest=False)
    if held.own is None and (record_id, signer.digest) in state.ids:  # in this batch
        return held._replace(own=state.ids[record_id, signer.digest])
    return held


class TraceLog(LogReader):
    """One trace log (`store`), appended to by any number of threads and processes."""

    def __init__(
        self, store: TraceStore, *, clock: Clock, signer: SignerSource | None = None
    ) -> None:
        self.store = store
        self.clock = clock
        self._signer = signer
        self._mutex = threading.Lock()
        self._queue: deque[_Pending] = deque()
        self._exclusive_waiters: deque[threading.Lock] = deque()
        self.commits = 0
        """How many group commits this object made (statistics)."""
        self._leader = False
        self._writer: sqlite3.Connection | None = None  # the leaders' (`_commit`)
        self._turns: Turns | None = None  # and their turn among other processes' leaders
        self._frontier: Frontier | None = None
        self._known_keys: set[str] = set()
        # chain heads and stored histories as of (size, newest checkpoint size) `_cached_at`:
        # only appends write heads (and move the size), only appends and checkpoints histories
        self._heads: dict[bytes, _Head | None] = {}
        self._histories: dict[bytes, tuple[int, bytes]] = {}
        self._cached_at: tuple[int, int] | None = None
        self._known_chains: set[bytes] = set()
        self.bridge: SignerBridge | None = None
        """What bridges a signer's history across 64 silent rotations: the node's own rows
        (`open_node_log` sets it)."""
        self.issuers: Callable[[int], Checkpoints] | None = None
        """The word at `now` on a checkpointed issuer history of a chain given at append: the
        node's stored copies and held feeds (`open_node_log` sets it); none, it is refused
        (`chain_signed.check_appended`; review 56k, chains 1)."""
        self.chain_issuers: IssuerCheck | None = None
        """The node's check of each issuer history of such a chain against its stored copies
        (`node.verify.trace_issuers`, as `troth trace verify` judges it; review 56y, chains 2)."""
        self._finish_interrupted_redaction()

    @classmethod
    def open(
        cls, path: str | Path, *, clock: Clock, signer: SignerSource | None = None
    ) -> TraceLog:
        """Open (creating it if needed) the log stored at `path`. With `signer`, the log is
        bound to that identity on first use and refuses another one later."""
        log = cls(open_trace_store(path), clock=clock, signer=signer)
        if signer is not None:
            wanted = signer(clock.now()).identity.identifier
            if log._bind(wanted) != wanted:
                log.close()
                raise ConfigError(f"{path} belongs to another log identity than {wanted}")
        return log

    def close(self) -> None:
        """Close the store once no group commit runs (closing a connection another thread is
        using would crash SQLite's binding)."""
        with self._exclusive():
            self.store.close()
            self._writer = None
            if self._turns is not None:
                self._turns.close()
                self._turns = None

    def __enter__(self) -> TraceLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- identity of the log -------------------------------------------------------------------

    def _bind(self, identifier: Identifier) -> Identifier:
        """Record `identifier` as the log identity unless one is recorded; return the one."""
        return bind_log_identity(self.store, identifier)

    @property
    def log_identity(self) -> Identifier:
        row = self.store.fetch_one(
            f"SELECT {_IDENTITY} FROM meta WHERE name = 'log_identity'"  # noqa: S608
        )
        if row is None:
            raise NotFound(f"{self.store.path} has no log identity yet (no checkpoint signed)")
        return stored_identifier(row[0], row[1], "log identity")

    # -- appending -----------------------------------------------------------------------------

    def append(self, record: VerifiedRecord, *, chain: bytes | None = None) -> Receipt:
        """Append `record` (with the delegation chain it names, when it is to be kept in the
        log); return once it is durable. Raises TraceError when the log refuses it."""
        pending = self.enqueue(record, chain=chain)
        self.wait(pending)
        return pending.result()

    def append_many(self, records: Sequence[VerifiedRecord]) -> list[Receipt | TraceError]:
        """Append records in order, in as few commits as the batch limit allows; each one's
        receipt or the reason it was refused."""
        pendings = self.enqueue_many(records)
        results: list[Receipt | TraceError] = []
        for pending in pendings:
            self.wait(pending)
            if isinstance(pending.error, TraceError):
                results.append(pending.error)
            else:
                results.append(pending.result())
        return results

    def enqueue(
        self,
        record: VerifiedRecord,
        *,
        chain: bytes | None = None,
        windows: tuple[VerifiedIdentity, ...] = (),
        credential: VerifiedCredential | None = None,
    ) -> _Pending:
        """Queue `record` behind every record queued before it (per-agent order is queue
        order), with its signer's verified `windows` (bridging the log's copy of the signer:
        `check_windows`) and `credential`, `chain` as a trace service verified it against its
        node's trust (not checked again). The caller must then `wait` for it (the lead passes
        to the oldest queued record's waiter) and read `result()`."""
        pending = _Pending(record, chain, windows, credential)
        self._queue.append(pending)  # (atomic: no mutex, whose wait would let go of the GIL)
        return pending

    def enqueue_many(self, records: Sequence[VerifiedRecord]) -> list[_Pending]:
        """`enqueue` each of `records`, in order, at once: a group commit that begins meanwhile
        takes all of them or none (an appender that signs a batch while another commits does
        not have the first part of it in that commit and then wait for it to end)."""
        pendings = [_Pending(record, None) for record in records]
        self._queue.extend(pendings)  # (atomic: a list's items are taken without a switch)
        return pendings

    def wait(self, pending: _Pending) -> None:
        """Return once `pending` is committed or refused, leading commits when none runs: the
        leader commits every queued record (up to MAX_TRACE_BATCH at a time) until its own is
        done, hands the lead to the oldest record still queued, then opens each committed
        record's gate (the next commit is on the critical path; the waiters it wakes compete
        for the processor with the next leader)."""
        while True:
            if pending.done:  # (set before its gate opens: no mutex needed to see it)
                return
            with self._mutex:
                if pending.done:
                    return
                if not self._leader:
                    self._leader = True
                    break
            pending.gate.acquire()
        finished: list[_Pending] = []
        try:
            while True:
                self.commits += 1
                self._commit(finished)
                if pending.done:
                    break
                for other in finished:
                    other.wake()
                finished.clear()
        finally:
            self._release_lead()
            for other in finished:
                other.wake()

    def _take_batch(self) -> list[_Pending]:
        """The oldest queued records, up to MAX_TRACE_BATCH (taken once the transaction has
        begun: appenders queue meanwhile, with no yield of the processor to wait for them)."""
        with self._mutex:
            count = min(len(self._queue), limits.MAX_TRACE_BATCH)
            return [self._queue.popleft() for _ in range(count)]

    def _release_lead(self) -> None:
        with self._mutex:
            self._leader = False
            if self._exclusive_waiters:  # a checkpoint waits: rare, and it goes first
                self._exclusive_waiters.popleft().release()
            elif self._queue:
                self._queue[0].wake()

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the lead without a record (to sign a checkpoint)."""
        while True:
            with self._mutex:
                if not self._leader:
                    self._leader = True
                    break
                gate = threading.Lock()
                gate.acquire()
                self._exclusive_waiters.append(gate)
            gate.acquire()
        try:
            yield
        finally:
            self._release_lead()

    def _commit(self, finished: list[_Pending]) -> None:
        """Commit (or refuse) the oldest queued records in one transaction; mark them done and
        add them to `finished` (the caller opens their gates)."""
        now = self.clock.now()
        frontier: Frontier | None = None
        batch: list[_Pending] | None = None
        try:
            if self._writer is None:  # one connection for every leader: its cache stays warm
                self._writer = self.store.dedicated()
            if self._turns is None:
                path = self.store.path
                self._turns = Turns(path.with_name(f"{path.name}.writer"), self.store.busy_timeout)
            conn = self._writer
            with self._turns.turn(), self.store.transaction_on(conn):
                frontier, mark, checkpointed_at = self._load_frontier(conn)
                frontier = frontier.copy()
                if mark != self._cached_at:  # another process appended or checkpointed
                    self._heads.clear()
                    self._histories.clear()
                batch = self._take_batch()
                state = _Batch(conn, checkpointed_at=checkpointed_at)
                self._prefetch(state, [p.record for p in batch])
                nodes: list[tuple[int, int, bytes]] = []
                for start in range(0, len(batch), _ADMIT_CHUNK):
                    leaves: list[tuple[Any, ...]] = []
                    for pending in batch[start : start + _ADMIT_CHUNK]:
                        try:
                            self._admit(pending, state, now, frontier.size)
                        except TraceError as exc:
                            pending.error = exc
                            continue
                        verified = pending.record
                        index = frontier.size
                        leaf = verified.leaf
                        for level, node_index, digest in frontier.append(leaf):
                            if level % NODE_LEVEL_STRIDE == 0:
                                nodes.append((level, node_index, digest))
                        leaves.append(
                            (
                                index,
                                verified.record.id,
                                leaf,
                                verified.envelope,
                                verified.stored_disclosures,
                                verified.record.agent.digest,
                            )
                        )
                        pending.index = index
                    insert_rows(conn, "leaves", leaves)
                insert_rows(conn, "nodes", nodes)
                heads = [
                    (agent, head.seq, head.hash, head.time, head.change)
                    for agent in state.changed_heads
                    if (head := state.heads[agent]) is not None
                ]
                insert_rows(conn, "agents", heads, verb="INSERT OR REPLACE")
                conn.execute("UPDATE meta SET value = ? WHERE name = 'size'", (frontier.size,))
                crash_point("trace.append.before-commit")
            crash_point("trace.append.after-commit")
            self._frontier = frontier
            self._known_keys = remember(self._known_keys, state.new_keys)
            self._known_chains = remember(self._known_chains, state.new_chains)
            self._heads = remember_agents(self._heads, state.heads)
            self._histories = remember_agents(self._histories, state.histories)
            self._cached_at = (frontier.size, mark[1])
        except BaseException as exc:
            self._frontier = None
            self._cached_at = None
            if batch is None:  # failed before taking: fail what it would have taken
                batch = self._take_batch()
            error = exc if isinstance(exc, TrothError) else StorageError(f"append failed: {exc}")
            for pending in batch:
                if pending.index is not None or pending.error is None:
                    pending.index, pending.error = None, error
            if not isinstance(exc, Exception):
                raise
        finally:
            for pending in batch or ():
                pending.done = True
            finished.extend(batch or ())

    def _prefetch(self, state: _Batch, records: list[VerifiedRecord]) -> None:
        """Read what admitting `records` needs and the caches do not hold, one query per chunk
        (each row read lets go of the GIL, and a thread busy signing may keep it a switch
        interval): which of their ids the log holds, their agents' heads and histories."""
        conn = state.conn
        ids = [verified.record.id for verified in records]
        state.taken.update(taken_ids(conn, ids))  # ids are per agent
        missing = []
        agents = {verified.record.agent.digest for verified in records}
        if self.bridge is not None:  # one query per commit, not one per agent
            state.node_newest = self.bridge.newest(agents)
        for agent in agents:
            if agent in self._heads:
                state.heads[agent] = self._heads[agent]
            else:
                state.heads[agent] = None
                missing.append(agent)
        for agent, head in agent_heads(conn, missing):  # (review 70i, leftovers 2)
            state.heads[agent] = _Head(*head)
        missing = []
        for signer in {verified.signer.identifier.digest for verified in records}:
            known = self._histories.get(signer)
            if known is not None:
                state.histories[signer] = known
            else:
                missing.append(signer)
        state.looked_up.update(missing)
        state.histories.update(known_histories(conn, missing))

    def _load_frontier(
        self, conn: sqlite3.Connection
    ) -> tuple[Frontier, tuple[int, int], int | None]:
        """The Merkle frontier, (size, newest checkpoint size): what the caches hold for, and
        the newest checkpoint's time (never before an older one's: `checkpoint`)."""
        row = conn.execute(FRONTIER_SQL).fetchone()  # (review 70i, leftovers 2)
        size = stored_int(row[0], row[1], "size") or 0
        last, checkpointed = row[2], row[3] or 0
        at = stored_int(row[4], row[5], "checkpoint time", empty=True)
        if (last is None and size != 0) or (last is not None and last + 1 != size):
            raise StorageError(
                f"trace log damaged: {size} records recorded, the last is at {last}; "
                "run troth trace verify"
            )
        if self._frontier is not None and self._frontier.size == size:
            return self._frontier, (size, checkpointed), at
        return Frontier.load(size, SubtreeReader(conn).perfect), (size, checkpointed), at

    def _admit(self, pending: _Pending, state: _Batch, now: int, index: int) -> None:
        """Raise TraceError unless the log accepts `pending` next, at `index` (the module's
        rules)."""
        verified = pending.record
        record = verified.record
        conn = state.conn
        agent = record.agent.digest
        key = (record.id, agent)  # ids are unique per agent (docs/formats.md, "Trace records")
        if key in state.ids or key in state.taken:
            raise TraceError(_F.REPLAYED, record=record.id)
        if agent not in state.heads:
            row = agent_head(conn, agent)
            state.heads[agent] = None if row is None else _Head(*row)
        head = state.heads[agent]
        if head is None:
            if record.seq != 0:
                raise TraceError(_F.CHAIN_BROKEN, f"seq {record.seq}, expected 0", record=record.id)
        elif record.seq != head.seq + 1 or record.prev != head.hash:
            raise TraceError(
                _F.CHAIN_BROKEN,
                f"seq {record.seq} does not follow seq {head.seq}",
                record=record.id,
            )
        if head is not None and record.time < head.time:
            raise TraceError(_F.TIME_REVERSED, record=record.id)
        if abs(record.time - now) > limits.MAX_CLOCK_SKEW_SECONDS:
            raise TraceError(
                _F.TIME_OUT_OF_RANGE, f"record at {record.time}, log at {now}", record=record.id
            )
        # (review 63s, traces 3: the verifier refuses it after a checkpoint it kept)
        check_not_backdated(record.time, state.checkpointed_at, record=record.id)
        signer, seen = verified.signer, None
        if signer is state.observed:  # a batch's records mostly share their signer's object
            current = state.observed_change
        else:  # kept once the record is admitted (review 48a, windows 1)
            seen = self._observe(state, signer, pending.windows)
            current = seen.current
        if verified.epoch.change != current:
            raise TraceError(
                _F.ATTESTATION_STALE,
                f"key of change {verified.epoch.change}, the log holds change {current}",
                record=record.id,
            )
        # rotated by another process: its key is retired (`_prefetch` read it, given a bridge)
        if (newest := state.node_newest.get(agent, 0)) > current:
            raise TraceError(
                _F.ATTESTATION_STALE, f"the node holds change {newest}", record=record.id
            )
        authority = record.authority
        held, kept = False, None
        if authority is not None:
            held, kept = self._chain_to_keep(state, authority.chain, authority.at, pending)
        if record.kind is Kind.RESOLUTION or record.parent_by_id:  # a version 1 link names
            # one record (review 36e, trace 4: an ambiguous one is refused), among the records
            # before it: here, all the log holds (review 36g, trace 1)
            parent = parent_record(
                record, lambda signer, record_id: _holding(state, signer, record_id), index=index
            )
            if record.kind is Kind.RESOLUTION:
                check_resolution(record, self._escalation(state, parent))
        # admitted: only now are its signer's history and windows, its key and its chain
        # stored, with it (a refused record leaves none behind: docs/traces.md, "Collection";
        # review 27t, collection 1; review 48a, windows 1)
        if seen is not None:
            keep(conn, seen)
            state.histories[seen.digest] = seen.known
            state.observed, state.observed_change = signer, current
        keyid = verified.epoch.keyid
        if keyid not in self._known_keys and keyid not in state.new_keys:
            conn.execute(
                "INSERT OR IGNORE INTO attestations VALUES (?, ?, ?)",
                (keyid, agent, verified.attestation),
            )
            state.new_keys.add(keyid)
        if authority is not None and held:
            if kept is not None:  # its links noted by issuer (review 60b, rotation 1)
                added = conn.execute(
                    "INSERT OR IGNORE INTO chains VALUES (?, ?)", (authority.chain, kept)
                )
                note_issued(conn, added, kept)
            state.new_chains.add(authority.chain)
        if record.kind is Kind.ESCALATION:
            state.escalations[key] = (record, verified.hash)
        state.ids[key] = index
        under = state.held.get(record.id)
        if under is None or len(under) < 2:
            state.held[record.id] = (*(under or ()), (index, agent))
        state.heads[agent] = _Head(record.seq, verified.hash, record.time, verified.epoch.change)
        state.changed_heads.add(agent)

    @staticmethod
    def _escalation(state: _Batch, parent: tuple[Identifier, str] | None) -> Escalation | None:
        """The record a resolution's parent link names (`parent_record`: (agent, id), never
        another agent's record under the same id), and its hash."""
        if parent is None:
            return None
        key = (parent[1], parent[0].digest)
        if key in state.escalations:
            return state.escalations[key]
        envelope = parent_envelope(state.conn, key)
        if envelope is None:
            return None
        record, payload, *_ = open_envelope(envelope)
        return record, sha256(payload)

    def _chain_to_keep(
        self, state: _Batch, digest: bytes, at: str, pending: _Pending
    ) -> tuple[bool, bytes | None]:
        """Whether the log holds the chain a record names once the record is stored, and the
        chain bytes to store with it (None: the log holds them already, or the record names a
        chain kept elsewhere); TraceError CHAIN_MISMATCH when the chain given is not the one
        named, or one named "at log" is not held; CREDENTIAL_INVALID for a chain given that no
        issuer signed (`check_chain_signed`). Stores nothing: the caller does, once the
        record is admitted."""
        chain = pending.chain
        known = digest in self._known_chains or digest in state.new_chains
        if chain is not None:
            if sha256(chain) != digest:
                raise TraceError(_F.CHAIN_MISMATCH, "the chain given is not the one named")
            if not known:  # signed by its issuers (review 56f, chains 1; 56k, chains 1)
                issuers = None if self.issuers is None else self.issuers(self.clock.now())
                rows = None if self.bridge is None else self.bridge.around  # (56q, chains 2)
                check_appended(chain, pending.credential, issuers, rows, self.chain_issuers)
            return True, None if known else chain
        if at == "log" and not known:
            row = state.conn.execute("SELECT 1 FROM chains WHERE digest = ?", (digest,)).fetchone()
            if row is None:
                raise TraceError(_F.CHAIN_MISMATCH, "names a chain the log does not hold")
            return True, None
        return known, None

    def _observe(
        self, state: _Batch, identity: VerifiedIdentity, sent: tuple[VerifiedIdentity, ...]
    ) -> Observed:
        """What the log holds of `identity` once a record it signed is admitted (`observe`:
        nothing written until `keep`). A fork raises TraceError(SIGNER_INVALID)."""
        digest = identity.identifier.digest
        known = state.histories.get(digest)
        if known is None and digest not in state.looked_up:
            known = known_history(state.conn, digest)
        return observe(state.conn, known, identity, sent, self.bridge)

    # -- checkpoints ---------------------------------------------------------------------------

    def checkpoint(self) -> Checkpoint:
        """Sign a checkpoint of everything appended so far (or return the one of this size)."""
        if self._signer is None:
            raise ConfigError("this log was opened without its signing identity")
        now = self.clock.now()
        signer = self._signer(now)
        epoch = resolve_key(signer.identity, signer.attestation)
        with self._exclusive(), self.store.transaction():
            conn = self.store.connection()
            frontier = self._load_frontier(conn)[0]
            self._frontier = frontier
            self._cached_at = None  # it may store the signer's history and a checkpoint
            size, root = frontier.size, frontier.root()
            held = stored_checkpoint(conn, size)
            if held is not None:
                if held[0] != root:
                    raise StorageError(f"trace log damaged: checkpoint {size} has another root")
                checkpoint, _ = parse_checkpoint(held[1])
                return checkpoint
            # never dated before an older checkpoint, nor so far before its records that it
            # reads as backdated (a record may be 300 s ahead: `now` stays, the key's time)
            last, newest = times_of_checkpoints(conn)
            floor = max(last or 0, (newest or 0) - limits.MAX_CLOCK_SKEW_SECONDS)
            signed = sign_checkpoint(signer, epoch, size, root, max(now, floor))
            state = _Batch(conn)
            keep(conn, self._observe(state, signer.identity, ()))
            conn.execute(
                "INSERT OR IGNORE INTO attestations VALUES (?, ?, ?)",
                (epoch.keyid, signer.identity.identifier.digest, signer.attestation),
            )
            conn.execute(
                "INSERT INTO checkpoints VALUES (?, ?, ?, ?)",
                (size, root, signed.time, signed.note),
            )
            crash_point("trace.checkpoint.before-commit")
        crash_point("trace.checkpoint.after-commit")
        return signed

    def latest_checkpoint(self, *, covering: int = 0) -> Checkpoint:
        """The newest stored checkpoint (whose size is above `covering`, a record index + 1)."""
        row = self.store.fetch_one(
            f"SELECT {_NOTE} FROM checkpoints WHERE size >= ? "  # noqa: S608
            "ORDER BY size DESC LIMIT 1",
            (covering,),
        )
        if row is None:
            raise NotFound("no checkpoint covers that record yet (troth trace checkpoint)")
        return parse_checkpoint(stored_bytes(row[0], row[1], "note"))[0]

    def checkpoints(self) -> list[bytes]:
        """Every stored checkpoint note, smallest first."""
        sql = f"SELECT {_NOTE} FROM checkpoints ORDER BY size"  # noqa: S608
        return [stored_bytes(r[0], r[1], "note") for r in self.store.fetch_all(sql)]

    # -- redaction -----------------------------------------------------------------------------

    def redact(self, record_id: str, name: str, *, agent: Identifier | None = None) -> bool:
        """Delete a disclosed value of record `record_id` (of `agent`: ids are unique per
        agent; None: the one record under that id, NotFound when several agents' are) (the
        record and its commitment stay); True if one was held. The page is overwritten
        (secure_delete) and the WAL, which still holds the old page, is checkpointed and
        truncated; raises StorageError if a reader keeps it from that.

        The commit that deletes the value also marks the log `redacting` (meta, a random
        token); the mark is cleared once the WAL is truncated. A log opened with the mark set
        (the redaction's process died between the two) truncates the WAL first (review 46c):
        once the log is next opened, the value's bytes are in none of its files."""
        with self.store.transaction():
            conn = self.store.connection()
            conn.execute("PRAGMA secure_delete = ON")
            index = locate(conn, record_id, agent)
            held = stored_disclosures(conn, index)
            removed = held.pop(name, None) is not None
            if removed:
                conn.execute(
                    "UPDATE leaves SET disclosures = ? WHERE idx = ?",
                    (encode_disclosures(held), index),
                )
                conn.execute(
                    "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                    (_REDACTING, os.urandom(16)),
                )
            crash_point("trace.redact.before-commit")
        crash_point("trace.redact.after-commit")  # the old page still in the WAL
        if not self._finish_redaction():
            raise StorageError("redacted, but a reader holds the write-ahead log: run it again")
        return removed

    def _finish_redaction(self) -> bool:
        """Truncate the WAL (the old pages of a committed redaction) and clear the log's
        `redacting` mark if it still names the redaction it read; False when a reader keeps
        the WAL from being truncated (the mark stays: the next open or redaction does it)."""
        sql = f"SELECT {_MARK} FROM meta WHERE name = ?"  # noqa: S608
        rows = self.store.fetch_all(sql, (_REDACTING,))
        marks = [stored_bytes(kind, mark, "redaction mark") for kind, mark in rows]
        if not self.store.truncate_wal():
            return False
        crash_point("trace.redact.after-checkpoint")
        if marks:
            self.store.execute(
                "DELETE FROM meta WHERE name = ? AND value = ?", (_REDACTING, marks[0])
            )
        return True

    def _finish_interrupted_redaction(self) -> None:
        """At open: `_finish_redaction` if the log is marked `redacting` (a redaction's process
        died after its commit). A reader holding the WAL, or a file this process cannot write,
        leaves the mark for the next open or redaction; the log opens all the same."""
        try:
            if self.store.fetch_all("SELECT 1 FROM meta WHERE name = ?", (_REDACTING,)):
                self._finish_redaction()
        except (StorageError, TraceError, sqlite3.Error):  # a damaged mark stays: `redact` says
            pass


def open_node_log(node: Node, *, clock: Clock) -> TraceLog:
    """The trace log of `node` (`<node dir>/trace.db`), its checkpoints signed by the node's
    log identity: an unnamed local identity created on first use (Ed25519). ArgumentError
    for anything but a `troth.node.Node` (review 59e, docs 3: a `troth.Node` failed bare)."""
    from troth.node.node import Node as StoredNode  # trace loads no node at import

    if not isinstance(node, StoredNode):
        expected = "a troth.node.Node (troth.node.open_node(NAME))"
        raise ArgumentError("open_node_log", "node", expected, type(node).__name__)
    log = TraceLog(open_trace_store(node.path / LOG_FILE), clock=clock)
    try:  # made and bound on first use, a killed first use resumed (review 54c, crash 2)
        bound = node_log_identity(node, log.store, now=clock.now())
    except BaseException:
        log.close()
        raise
    identities, ref = node.identities, str(bound)

    def signer(now: int) -> Signer:
        return identities.signer(ref, now=now)

    log._signer = signer
    wallet = node.wallet  # its stored copies and held feeds (review 56k, chains 1)
    log.issuers = lambda now: wallet.checkpoints(
        now=now, max_staleness=limits.DEFAULT_FEED_STALENESS_SECONDS
    )
    from troth.node.verify import trace_issuers  # the node's own check; trace loads no node

    log.chain_issuers = trace_issuers(node)  # (review 56y, chains 2)
    log.bridge = SignerBridge(
        identities.attested_by_store,
        identities.history_window,
        identities.window_around,
        identities.newest_changes,
    )
    return log
