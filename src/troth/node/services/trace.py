"""The trace service (`/service/trace`) and its client: agents submit their signed records over
secure channels to a node, which verifies them and appends them to its log (docs/protocols.md,
"Trace service"; docs/traces.md, "Collection").

Methods, each behind the node's decision point (`MembersOnly`: holders of a credential from an
authority the node trusts, and its anchors; a caller in the node's own process or on its
control socket passes too):

    submit  a Submission (troth.trace.submit)  -> Receipts: per record its index or refusal,
                                                  the caller's head, a checkpoint reference
    head    []                                 -> Receipts without results (where to chain on)
    held    []                                 -> null | [index, change hash]: the last change
                                                  of the log's copy of the caller's history
                                                  (where its history windows start from)
    prove   [record id]                        -> the record's offline proof bundle (JSON text)

**Who may submit what**: a member submits only the records it signed itself (the submitted
history must be the channel peer's); a local caller may submit anyone's (they are verified all
the same). A member gets proofs of its own records only. A caller has at most
MAX_TRACE_SUBMITS_PER_CALLER submissions in progress, the node MAX_TRACE_SUBMITS (past it, a
caller whose authority holds less than its share still submits: troth.node.shares); more are
refused at once ("busy") and the client sends again after a backoff. A member's submissions
(its delegates' with them) spend TRACE_SUBMIT_BYTES_PER_SECOND, each at least
TRACE_SUBMIT_CHARGE (a commit of the log, whatever its size), and as much again for each
history window it carries (up to 64 signatures to verify; review 47l, windows 1) and, in
proportion, for its signer history's changes (review 55b, service 2); each `head`
and `held` TRACE_QUERY_CHARGE (review 48a, queries 1), each `prove` its answer's bytes (at
least that; queries 2).

`TraceClient` is the agent's side: `record(content)` (from any thread) queues a record and
returns at once (`Queued`); a pump sends batches (after TRACE_FLUSH_SECONDS, or as soon as a
batch is full), one request per batch, resending a batch byte for byte until it is answered
(troth.trace.batcher), with backoff between failures; a batch whose records the service
refused for now (`not accepted yet`: its feed copy not fresh) is kept and sent again after the
same backoff (review 48n). A record refused REPLAYED (by a service of before review 70o: a
batch appended, its answer lost, signed again by a rotation) has its log copy asked for
(`prove`), and the batcher judges it delivered by it (troth.trace.replayed; review 71g,
outbox2 2). A client presenting a checkpointed
history asks once per history where the log's copy of it ends (`held`); when its history no
longer reaches back to it (64 rotations or more without a record there), its batch carries
the windows its node holds that bridge the two (`AgentWindows`; at most
MAX_TRACE_SUBMIT_WINDOWS; review 47l, windows 1). A service that knows no `held` gets none.
`NodeTraces` is where a node's records go: its own log (`<node>/trace.db`, the default), or the
trace service node.json names.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import Future, InvalidStateError
from typing import Any, Final

from troth import limits
from troth.clock import Clock
from troth.encoding import cbor
from troth.errors import (
    Busy,
    DecodeError,
    NotFound,
    RemoteError,
    StorageError,
    TraceError,
    TraceFailure,
    TrothError,
)
from troth.identity import Identifier, UnverifiedHistory, VerifiedIdentity
from troth.node.access import MembersOnly, PeerCaller, member_accounts
from troth.node.links import Backoff
from troth.node.node import Node
from troth.node.rates import ByteBudgets
from troth.node.services.base import Method, RequestContext
from troth.node.shares import Shares, authorities_of
from troth.node.trust import NodeTrust
from troth.node.worker import StoreWorker
from troth.trace.adapters import LinksSource, TraceAuditSink, TraceDecisionRecorder
from troth.trace.batcher import SUBMIT_ROOM, WAITED_OUT, Batcher, Queued
from troth.trace.bridge import AgentWindows
from troth.trace.collect import TraceCollector
from troth.trace.export import bundle_text
from troth.trace.log import TraceLog, open_node_log
from troth.trace.outbox import TraceOutbox
from troth.trace.outbox_store import OutboxStore, outbox_exists
from troth.trace.recorder import TraceRecorder
from troth.trace.signing import RecordContent
from troth.trace.submit import Receipts, Status, Submission, windows_size

__all__ = ["TRACE_BACKOFF", "NodeTraces", "Send", "TraceClient", "TraceService"]

log = logging.getLogger("troth.node.trace")
TRACE_BACKOFF: Final = Backoff(0.2, 10.0)
"""How long a client waits before it sends an unanswered batch again (full jitter)."""
_LOOK_AGAIN_SECONDS: Final = 5.0
"""How often an idle client looks at its outbox again (records another process queued), and
a client that another process's sending keeps out tries again."""

Send = Callable[[str, Any], Awaitable[Any]]
"""Call a method of the trace service with arguments; its result (TrothError on failure)."""


def _submitter(context: RequestContext) -> Identifier | None:
    caller = context.caller
    return caller.identifier if isinstance(caller, PeerCaller) else None


def _agent(arguments: Any, context: RequestContext, method: str) -> Identifier:
    """Whose head a `method` call asks for: a member's own, a local caller's argument."""
    agent = _submitter(context)
    if agent is None:
        try:
            (text,) = cbor.expect_array(arguments, f"{method} arguments [agent]", 1)
            agent = Identifier.parse(cbor.expect_text(text, "agent"))
        except (DecodeError, ValueError) as exc:
            raise RemoteError(str(exc)) from None
    return agent


def _history_cost(history: bytes, least: int) -> int:
    """What verifying a submitted signer history costs beyond its first change, in proportion
    to its changes: `least` (a commit's worth) for MAX_IDENTITY_CHANGES of them, as a history
    window costs (review 55b, service 2: 64 changes, 127 signatures, were free). A history
    that does not decode costs nothing more (the collector refuses it unverified)."""
    try:
        changes = len(UnverifiedHistory.decode(history).changes)
    except DecodeError:
        return 0
    return least * (changes - 1) // limits.MAX_IDENTITY_CHANGES


def _accounts(context: RequestContext) -> frozenset[bytes] | None:
    """Whom a peer's submissions count against (`member_accounts`: a member's delegates share
    its byte budget and its submissions in progress); None for a local caller."""
    caller = context.caller
    return member_accounts(caller.peer) if isinstance(caller, PeerCaller) else None


class TraceService:
    """Verifies members' records and appends them to the node's log (module docstring)."""

    name = "trace"
    oneway: Method | None = None

    def __init__(self, traces: NodeTraces, trust: NodeTrust, worker: StoreWorker) -> None:
        self.traces = traces
        self.trust = trust
        self.worker = worker
        self._collector: TraceCollector | None = None
        self._busy: dict[frozenset[bytes] | None, int] = {}  # by member_accounts
        self._shares = Shares(lambda: len(trust.anchors))  # the submissions in progress
        self._rates = ByteBudgets(
            rate=limits.TRACE_SUBMIT_BYTES_PER_SECOND,
            burst=limits.TRACE_SUBMIT_BURST_BYTES,
            max_sources=limits.MAX_TRACE_RATE_SOURCES,
        )
        self.appended = 0
        self.already = 0  # resends answered from the log: nothing appended (review 62b,
        # traces 1: counted as appended, a replayed record made the status say thousands)
        self.refused = 0
        members = MembersOnly()
        self.methods: Mapping[str, Method] = {
            "submit": Method(self.submit, members),
            "head": Method(self.head, members),
            "held": Method(self.held, members),
            "prove": Method(self.prove, members),
        }

    def collector(self) -> TraceCollector:
        """The collector over the node's log (opened on first use; storage thread)."""
        if self._collector is None:
            self._collector = TraceCollector(
                self.traces.log(),
                verifier=lambda: self.trust.verifier,
                feeds=lambda: self.trust.feeds,
                observe=self.traces.node.identities.observe,
                vouched=self.trust.vouchers.of,
                checkpoints=self.trust.checkpoints,
                due=lambda: self.trust.due,
                observe_issuer=self.trust.observe_unrefuted,
            )
        return self._collector

    @contextlib.contextmanager
    def _slot(
        self, caller: frozenset[bytes] | None, authorities: frozenset[bytes]
    ) -> Iterator[None]:
        """A submission in progress of `caller` (its member accounts): within the caller's
        bound, and within the node's or its authorities' share of it (troth.node.shares)."""
        mine = self._busy.get(caller, 0)
        if mine >= limits.MAX_TRACE_SUBMITS_PER_CALLER or not self._shares.room(
            authorities, limits.MAX_TRACE_SUBMITS
        ):
            raise RemoteError("busy: too many submissions in progress, send again later")
        self._busy[caller] = mine + 1
        self._shares.take(authorities)
        try:
            yield
        finally:
            self._shares.release(authorities)
            left = self._busy[caller] - 1
            if left:
                self._busy[caller] = left
            else:
                del self._busy[caller]

    async def submit(self, arguments: Any, context: RequestContext) -> list[Any]:
        """Verify and append a batch of the caller's records: the Receipts."""
        submitter, accounts = _submitter(context), _accounts(context)
        # each commits the log, whatever its size (review 46a, trace 2: one-record
        # submissions kept the storage thread busy); never more than the whole burst; one
        # that does not decode costs that least too (valid or not, every submission counts)
        least = min(limits.TRACE_SUBMIT_CHARGE, self._rates.burst)
        try:
            submission = Submission.from_cbor(arguments)
        except DecodeError as exc:
            self._charge(accounts, least, context.now)
            raise RemoteError(f"not a submission: {exc}") from None
        # each window verified costs about a commit too (review 47l, windows 1), and so does
        # the signer history, as long as a window (review 55b, service 2)
        windows = least * (1 + len(submission.windows))
        cost = max(submission.size(), windows + _history_cost(submission.history, least))
        self._charge(accounts, cost, context.now)
        caller = context.caller
        with self._slot(accounts, authorities_of(caller)):
            shown = caller.peer.credentials if isinstance(caller, PeerCaller) else ()
            receipts = await self.worker.run(
                lambda: self.collector().submit(
                    submission, submitter=submitter, now=context.now, credentials=shown
                )
            )
        for result in receipts.results:
            if result.status is Status.APPENDED:
                self.appended += 1
            elif result.delivered:
                self.already += 1
            else:
                self.refused += 1
        return receipts.to_cbor()

    def _charge(self, accounts: frozenset[bytes] | None, cost: int, now: int) -> None:
        """Take `cost` from every account's trace byte budget (a local caller has none), or
        refuse the request "busy" (its client sends it again after a backoff)."""
        if accounts is not None and not self._rates.take_all(accounts, cost, now=now):
            raise RemoteError("busy: over this member's trace byte rate, send again later")

    async def head(self, arguments: Any, context: RequestContext) -> list[Any]:
        """The caller's head in the log (a local caller: arguments [identifier text])."""
        who = _agent(arguments, context, "head")
        self._charge(_accounts(context), limits.TRACE_QUERY_CHARGE, context.now)
        receipts = await self.worker.run(lambda: self.collector().head(who))
        return receipts.to_cbor()

    async def held(self, arguments: Any, context: RequestContext) -> list[Any] | None:
        """The last change of the log's copy of the caller's history, [index, change hash]
        (null: the log holds none; a local caller: arguments [identifier text]): where the
        history windows a client sends start from (review 47l, windows 1)."""
        who = _agent(arguments, context, "held")
        self._charge(_accounts(context), limits.TRACE_QUERY_CHARGE, context.now)
        held = await self.worker.run(lambda: self.collector().held(who))
        return None if held is None else list(held)

    async def prove(self, arguments: Any, context: RequestContext) -> str:
        """The offline proof bundle of one of the caller's records (JSON text, as `troth trace
        prove` writes it: UTF-8, not `\\u` escapes of 6 characters each, which made a
        record's non-ASCII disclosures up to 3 times their size and its proof over the answer
        limit; review 46a, trace 1). Within the answer limit for every record the collector
        accepts: its values together are at most MAX_TRACE_RECORD_DISCLOSURE_BYTES, the answer
        limit less all else a bundle holds (review 47b, limits 1). A member pays the answer's
        bytes from its trace byte budget: TRACE_QUERY_CHARGE before, the rest once it is made
        (review 48a, queries 2)."""
        try:
            (record_id,) = cbor.expect_array(arguments, "prove arguments [record id]", 1)
            record_id = cbor.expect_text(record_id, "record id")
        except DecodeError as exc:
            raise RemoteError(str(exc)) from None
        requester, now, accounts = _submitter(context), context.now, _accounts(context)
        self._charge(accounts, limits.TRACE_QUERY_CHARGE, now)
        bundle = await self.worker.run(
            lambda: self.collector().prove(record_id, requester=requester, now=now)
        )
        text = bundle_text(bundle, lines=True)
        if accounts is not None:  # the rest of the answer's bytes (review 48a, queries 2)
            owed = len(text.encode()) - limits.TRACE_QUERY_CHARGE
            self._rates.owe(accounts, max(0, owed), now=now)
        return text

    async def maintain(self, now: int) -> None:
        """Forget the byte budgets that refilled (checkpoints are signed when a proof needs
        one)."""
        self._rates.prune(now=now)

    def status(self) -> dict[str, Any]:
        """Records appended, answered already in the log (a resend) and refused since the
        node started."""
        return {"appended": self.appended, "already": self.already, "refused": self.refused}


class TraceClient:
    """Sends one identity's records to a trace service in batches (module docstring)."""

    def __init__(
        self,
        send: Send,
        batcher: Batcher,
        *,
        clock: Clock,
        run: Callable[..., Awaitable[Any]] | None = None,
        flush_seconds: float = limits.TRACE_FLUSH_SECONDS,
        backoff: Backoff = TRACE_BACKOFF,
        jitter: Callable[[], float] = random.random,
        windows: AgentWindows | None = None,
    ) -> None:
        """`windows`: the agent's node's rows of its identity, for the history windows a batch
        carries when the log's copy of the agent lags (None: never any)."""
        self.send = send
        self.batcher = batcher
        self.windows = windows
        self._bridged: bytes | None = None  # the current change hash of the newest history
        # the log took (or needs no windows for): `held` is asked again once the agent rotates
        self.clock = clock
        self._run = run
        self.flush_seconds = flush_seconds
        self.backoff = backoff
        self._jitter = jitter
        self.failures = 0
        """Requests that got no usable answer (each is sent again)."""
        self.recorded = 0
        """Records this object took (`record`) since it was made."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()  # bound to the loop that first waits on it
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._start_lock = threading.Lock()
        self._claimed = False

    @property
    def agent(self) -> Identifier:
        """The identity whose records this client sends."""
        return self.batcher.agent(self.clock.now())

    def record(
        self,
        content: RecordContent,
        *,
        chain: bytes | None = None,
        source: Identifier | None = None,
    ) -> Queued:
        """Queue a record (any thread), made on behalf of member `source` if any: with a
        durable outbox (a node's), it is signed and committed before this returns; it is sent
        with the next batch. TraceError OVER_LIMIT when the queue, or that member's share of
        it (TRACE_OUTBOX_SOURCE_PERCENT), is full: the caller must stop, not carry on
        unrecorded."""
        queued = self.batcher.add(content, chain=chain, now=self.clock.now(), source=source)
        self.recorded += 1
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._wake.set)
        return queued

    def start(self) -> None:
        """Start the pump on the running event loop."""
        with self._start_lock:
            if self._task is not None:
                return
            self._loop = asyncio.get_running_loop()
            self._wake.set()  # records queued before the start
            self._task = self._loop.create_task(self._pump())

    async def flush(self, timeout: float | None = None) -> None:
        """Return once every record queued so far is answered (TimeoutError after
        `timeout` s)."""
        self.start()
        async with asyncio.timeout(timeout):
            while self.batcher.pending():
                self._idle.clear()
                self._wake.set()
                await self._idle.wait()

    async def stop(self) -> None:
        """Stop the pump (records not answered stay queued: in the outbox, or in this
        object's memory) and let the batcher go (another process may send an outbox)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            await self._call(self.batcher.close)
        except BaseException:  # cut short behind a stuck storage call, dropped: let go here,
            self.batcher.close()  # which needs no storage (review 63y2, traces 1: the outbox
            raise  # stayed claimed for the process's life, a restarted node sent nothing)
        finally:
            self._claimed = False

    def status(self) -> dict[str, Any]:
        """What `troth node status` shows of this client: its batcher's counts, failures."""
        return {**self.batcher.status(), "failures": self.failures}

    async def _call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`function` on the storage thread (when the client was given one), else here."""
        if self._run is None:
            return function(*args, **kwargs)
        return await self._run(function, *args, **kwargs)

    async def _pump(self) -> None:
        attempt = 0
        while True:
            if not self.batcher.pending():
                self._idle.set()
                with contextlib.suppress(TimeoutError):  # another process may queue records
                    async with asyncio.timeout(_LOOK_AGAIN_SECONDS):
                        await self._wake.wait()
                self._wake.clear()
                continue
            self._wake.clear()
            if not await self._claim():
                self._idle.set()
                await asyncio.sleep(_LOOK_AGAIN_SECONDS)
                continue
            if not self.batcher.in_flight and self.batcher.queued() < self.batcher.batch_records:
                await asyncio.sleep(self.flush_seconds)  # let a batch fill
            try:
                await self._send_one()
                attempt = 0
            except Exception as exc:  # the pump outlives any failure: the batch is sent again
                self.failures += 1
                if isinstance(exc, TrothError | TimeoutError):
                    log.warning("trace: a batch was not delivered (sent again): %s", exc)
                else:
                    log.exception("trace: sending a batch failed (sent again)")
                delay = self.backoff.delay(attempt, self._jitter)
                if isinstance(exc, TraceError) and exc.reason in WAITED_OUT:  # the log's clock
                    delay = max(delay, limits.TRACE_BACKDATED_WAIT_SECONDS)  # ran ahead (68i)
                await asyncio.sleep(delay)
                attempt += 1
            self._idle.set()

    async def _claim(self) -> bool:
        """Whether this pump sends the batcher's records (another process may send a node's
        outbox: then this one looks again later)."""
        if not self._claimed:
            try:
                self._claimed = bool(await self._call(self.batcher.claim))
            except TrothError as exc:
                log.warning("trace: cannot take the outbox to send it: %s", exc)
            if not self._claimed:
                log.info("trace: another process sends this outbox; looking again later")
        return self._claimed

    async def _send_one(self) -> None:
        batcher = self.batcher
        if not batcher.head_known:
            agent = str(self.agent)
            answer = await self.send("head", [agent])
            batcher.set_head(Receipts.from_cbor(answer, expected=0).head)
        presented, held = await self._held()
        reserve = 0 if held is None else limits.MAX_TRACE_SUBMIT_WINDOW_BYTES
        batch = await self._call(batcher.next_batch, self.clock.now(), reserve=reserve)
        if batch is None:
            return
        submission = batch.submission
        if held is not None and self.windows is not None:  # the windows to the history the
            # batch carries (older than `presented` in a batch made before a rotation, resent)
            windows = await self._windows(self.windows, submission.history, held)
            fits = submission.size() + windows_size(windows) + SUBMIT_ROOM
            if windows and fits <= limits.MAX_SERVICE_MESSAGE:  # a batch made before, with
                # no room kept for them, goes without: refused as before
                submission = dataclasses.replace(submission, windows=windows)
        answer = await self.send("submit", submission.to_cbor())
        try:
            receipts = Receipts.from_cbor(answer, expected=len(submission.records))
        except DecodeError as exc:
            raise RemoteError(f"malformed receipts: {exc}") from None
        if presented is not None and any(result.delivered for result in receipts.results):
            self._bridged = presented.current_change_hash
        copies = await self._copies(batcher.replayed(receipts))
        await self._call(batcher.answered, receipts, now=self.clock.now(), copies=copies)
        if any(result.transient for result in receipts.results):  # refused for now: sent
            # again after a backoff, not at once (review 48n, stale 1)
            raise TraceError(
                TraceFailure.NOT_YET,
                "the service refused records for now, sent again later: "
                + next(r.detail for r in receipts.results if r.transient),
            )
        waiting = batcher.held_back
        if waiting is not None:  # kept (a clock is off), sent again after a wait of
            # TRACE_BACKDATED_WAIT_SECONDS, not signed and sent at once (review 68i, clock 3)
            raise TraceError(TraceFailure(waiting["reason"]), waiting["detail"])

    async def _copies(self, records: list[str]) -> dict[str, Any]:
        """The service's `prove` answer for each of `records` (refused REPLAYED: the batcher
        counts one delivered when the log's copy is the record it sent; troth.trace.replayed,
        review 71g, outbox2 2): one query each, at most a batch's records. A record the
        service proves not (no such method, not found) has none: its refusal stands; a busy
        service, or one out of reach, fails the request (the batch sent again after a
        backoff)."""
        copies: dict[str, Any] = {}
        for record in records:
            try:
                copies[record] = await self.send("prove", [record])
            except RemoteError as exc:
                if isinstance(exc, Busy):
                    raise
                log.info("trace: the service proves not record %s: %s", record, exc)
        return copies

    async def _held(self) -> tuple[VerifiedIdentity | None, tuple[int, bytes] | None]:
        """The agent's history as presented now, and where the log's copy of it ends (`held`:
        (index, change hash)) when its next batch needs windows: only when it presents a
        checkpointed history not known to be taken, and the log's copy ends more than a change
        before it starts (review 47l, windows 1)."""
        source = self.windows
        if source is None:
            return None, None
        presented = await self._call(source.presented, self.clock.now())
        if presented.first_index == 0 or presented.current_change_hash == self._bridged:
            return presented, None
        try:
            held = _held(await self.send("held", [str(presented.identifier)]))
        except RemoteError as exc:  # a service that knows no `held`: never any windows; any
            # other error (busy, a failure on the node) fails the request, sent again after a
            # backoff (review 48a, held 1: taken for none, the batch went without its windows
            # and its records were set aside, refused)
            if not _no_method(exc):
                raise
            log.info("trace: the service tells not where its copy of the agent ends: %s", exc)
            self._bridged = presented.current_change_hash
            return presented, None
        if held is None or held[0] + 1 >= presented.first_index:  # the history is taken as
            # it is (the log holds none, or it reaches back to the log's copy)
            self._bridged = presented.current_change_hash
            return presented, None
        return presented, held

    async def _windows(
        self, source: AgentWindows, history: bytes, held: tuple[int, bytes]
    ) -> tuple[bytes, ...]:
        """The windows that bridge the log's copy ending at `held` to `history` (its node's
        rows), or none when its node cannot: the batch is refused as before."""
        windows: tuple[bytes, ...] | None = await self._call(source.between, history, *held)
        if windows is None:
            log.warning(
                "trace: the log's copy of the agent ends at change %d, and this node holds no "
                "windows that bridge it to its history (its records there will be refused)",
                held[0],
            )
            return ()
        return windows


def _no_method(exc: RemoteError) -> bool:
    """Whether `exc` answers that the service has no such method (a service of before review
    47l: troth.node.services.host), not that it failed or is busy."""
    return not isinstance(exc, Busy) and " has no method " in str(exc)


def _held(answer: Any) -> tuple[int, bytes] | None:
    """The answer to `held`: (index, change hash) or None; RemoteError when malformed."""
    if answer is None:
        return None
    try:
        index, digest = cbor.expect_array(answer, "held", 2)
        return cbor.expect_int(index, "index"), cbor.expect_bytes(digest, "change hash", 32)
    except DecodeError as exc:
        raise RemoteError(f"malformed answer to held: {exc}") from None


class NodeTraces:
    """Where a node's records go: its own log by default, or the trace service node.json
    names (`traces`: a route ending in /service/trace) for the records its own identity signs
    while it runs, through a durable outbox in the node's database (troth.trace.outbox). The
    log and the outbox are opened on first use; a node whose outbox holds records resumes
    sending them when it starts."""

    def __init__(
        self,
        node: Node,
        *,
        clock: Clock,
        send: Send | None = None,
        run: Callable[..., Awaitable[Any]] | None = None,
    ) -> None:
        self.node = node
        self.clock = clock
        self._send = send
        self._run = run
        self._log: TraceLog | None = None
        self._lock = threading.Lock()
        self._client: TraceClient | None = None
        self._recorders: dict[str, TraceRecorder] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ended = False  # `close` ran: nothing opens the log or a client again

    def started(self, loop: asyncio.AbstractEventLoop) -> None:
        """The node runs on `loop` (a client asked for from another thread starts there). With
        a trace service named and records in the outbox, the client starts sending them now."""
        self._loop = loop
        if self.remote is not None and self._send is not None and outbox_exists(self.node.db):
            try:
                mine = Identifier(self.node.identities.find(self.node.name).identifier)
            except NotFound:
                return
            if any(agent == mine.digest and queued for agent, queued, *_ in self._counts()):
                self.recorder()

    def _counts(self) -> list[tuple[bytes, int, int, int, int]]:
        return OutboxStore(self.node.db).counts()

    @property
    def remote(self) -> str | None:
        """The trace service route node.json names (None: the node's own log)."""
        return self.node.config.traces

    def log(self) -> TraceLog:
        """The node's own trace log (`<node>/trace.db`)."""
        with self._lock:
            self._check_open()
            if self._log is None:
                self._log = open_node_log(self.node, clock=self.clock)
            return self._log

    def _check_open(self) -> None:
        """StorageError once `close` ran (the lock held): a log or client opened after it (a
        peer's first submission, a record, during the rest of the node's stop) was never
        closed, trace.db left open after the stop (review 64c, stop 1)."""
        if self._ended:
            raise StorageError(f"node {self.node.name!r}'s traces are closed: the node stopped")

    def recorder(self, ref: str | None = None) -> TraceRecorder | TraceClient:
        """Where local identity `ref`'s records go (default: the node's own identity): the
        trace service node.json names, for the node's own identity; else the node's log."""
        name = ref or self.node.name
        if name == self.node.name and self.remote is not None and self._send is not None:
            with self._lock:
                self._check_open()
                if self._client is None:
                    identities = self.node.identities
                    outbox = TraceOutbox(
                        self.node.db,
                        Identifier(identities.find(name).identifier),
                        lambda now: identities.signer(name, now=now),
                    )
                    windows = AgentWindows(
                        lambda now: identities.get(name, now=now).identity,
                        identities.history_window,
                    )
                    self._client = TraceClient(
                        self._send, outbox, clock=self.clock, run=self._run, windows=windows
                    )
                client = self._client
            try:
                asyncio.get_running_loop()
            except RuntimeError:  # another thread (a gate on the storage thread): start it there
                if self._loop is not None:
                    self._loop.call_soon_threadsafe(client.start)
            else:
                client.start()
            return client
        return self.local(name)

    def status(self) -> dict[str, Any]:
        """Where the node's records go and, with a trace service, what its outbox holds (the
        records queued and those set aside, with the latest refusals): `troth node status`."""
        if self.remote is None:
            shown: dict[str, Any] = {"to": "log"}
        else:
            shown = {"to": self.remote}
        client = self._client
        if client is not None:
            shown["outbox"] = client.status()
        elif outbox_exists(self.node.db):
            counts = self._counts()
            shown["outbox"] = {
                "queued": sum(c[1] for c in counts),
                "refused": sum(c[3] for c in counts),
            }
        return shown

    def decision_recorder(
        self, ref: str | None = None, *, links: LinksSource | None = None
    ) -> TraceDecisionRecorder:
        """A gate's `DecisionRecorder` signing as local identity `ref` (default: the node's own
        identity), its records going where `recorder(ref)` sends them."""
        return TraceDecisionRecorder(self.recorder(ref), links=links)

    def audit_sink(
        self, ref: str | None = None, *, links: LinksSource | None = None
    ) -> TraceAuditSink:
        """A broker's `AuditSink` signing as local identity `ref` (default: the node's own
        identity), its records going where `recorder(ref)` sends them."""
        return TraceAuditSink(self.recorder(ref), links=links)

    def local(self, ref: str) -> TraceRecorder:
        """A recorder signing as local identity `ref` into the node's own log."""
        name = ref
        with self._lock:
            found = self._recorders.get(name)
        if found is None:
            identities = self.node.identities
            found = TraceRecorder(
                self.log(), lambda now: identities.signer(name, now=now), clock=self.clock
            )
            with self._lock:
                found = self._recorders.setdefault(name, found)
        return found

    async def close(self) -> None:
        """Deliver what the client holds (up to 5 s, when it recorded anything: the rest stays
        in the outbox for the next start), stop it, close the log: stopped and closed however
        the flush ends (review 63v2, stop 1: a node's stop cut it short past its share, and
        the pump ran on, the outbox claimed, the log open)."""
        client = self._client
        try:
            if client is not None and client.recorded:
                with contextlib.suppress(TimeoutError, TrothError):
                    await client.flush(5.0)
        finally:
            try:
                if client is not None:
                    await client.stop()
            finally:
                closing = self._closed()
                if closing is not None:
                    await asyncio.wrap_future(closing)

    def _closed(self) -> Future[None] | None:
        """The client and recorders let go, for good; the log closed on a thread of its own
        (its future): `TraceLog.close` waits for a commit under way, which may wait up to the
        busy timeout for another process's turn on trace.db; on the event loop that blocked
        every channel and the node's bounded stop (review 64c, stop 2)."""
        with self._lock:
            self._ended = True
            self._client = None
            self._recorders.clear()
            log, self._log = self._log, None
        return None if log is None else _aside(log.close, "troth-trace-close")


def _aside(function: Callable[[], None], name: str) -> Future[None]:
    """`function()` on a daemon thread of its own (the process's exit does not wait for it):
    its future, done when it returned (its error in it)."""
    done: Future[None] = Future()

    def run() -> None:
        try:
            function()
        except BaseException as exc:  # handed to whoever awaits it, as an executor's future
            with contextlib.suppress(InvalidStateError):  # (no one does: cancelled)
                done.set_exception(exc)
        else:
            with contextlib.suppress(InvalidStateError):
                done.set_result(None)

    threading.Thread(target=run, name=name, daemon=True).start()
    return done
