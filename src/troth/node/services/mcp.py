"""A published MCP server (`/service/mcp.<name>`): an upstream MCP server, spawned once, served
to many agents over secure channels, each call decided on the channel's verified peer
(docs/policy.md, "MCP over secure channels"; docs/protocols.md, "MCP service").

    send [frame (bytes), reply (text: the client's worker address)] -> null

Each client message comes as a `send` request carrying an `McpFrame`
(troth.integrations.mcp.frames), so the node's access decision answers every one of them. The
first frame of a new (channel, session) pair opens a session: an MCP gate server built for
that channel's peer (`PeerCredential`: its standing and credentials re-checked at every
request), fed the session's frames; its messages go back as one-way frames, through the same
channel, to the client's worker address. Open to members, caveated credentials included
(`GatedMembers`): Cedar decides every tools/call with the chain's caveats, and the `send`
requests too when a bundle declares the service; a tools/call is decided with a chain the
`send` admission takes only (`GatedPolicy.admits`; review 37a, mcp 1).

Bounded: MAX_MCP_SESSIONS in total (past it, a peer whose authority holds less than its share
still opens one: troth.node.shares), MAX_MCP_SESSIONS_PER_PEER per member, MAX_MCP_QUEUE
messages queued per session (a session that falls behind is closed), MAX_MCP_SESSION_HELD
bytes of decoded requests held per session until answered (troth.integrations.mcp.held;
review 70l, mcpwait 1) and MAX_MCP_SERVER_HELD by all its sessions together (each
authority's share; review 71a, mcpheld 6), frames of at most
MAX_MCP_FRAME bytes, lines of the upstream of at most MAX_MCP_UPSTREAM_LINE bytes
(troth.integrations.mcp.upstream). Sessions end with their channel or when the client ends
them.

The upstream runs with the MCP SDK's default environment (its whitelist: PATH, HOME, ...):
troth's secrets and keys are never passed to it. The SDK (the `mcp` extra) is imported only
when a server is published.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from troth import limits
from troth.channel import VerifiedPeer
from troth.clock import Clock
from troth.credentials import VerifiedFeed
from troth.encoding import cbor
from troth.errors import (
    ConflictError,
    DecodeError,
    PolicyError,
    PolicyFailure,
    RemoteError,
    TrothError,
)
from troth.gates.engine import PolicyEngine
from troth.gates.point import DecisionPoint, DecisionRecorder, PolicySource
from troth.gates.toolschema import check_name
from troth.identity import Identifier
from troth.integrations.mcp.frames import McpFrame
from troth.integrations.mcp.held import HeldRequests, Weighed, loose_most
from troth.node.access import GatedMembers, GatedPolicy, PeerCaller, Standing, member_accounts
from troth.node.channel_ends import ChannelEnd
from troth.node.channels import ChannelManager
from troth.node.rates import ByteBudgets
from troth.node.services.base import Method, RequestContext
from troth.node.services.node_policies import NodePolicies, PeerCredential
from troth.node.shares import Shares, authorities_of
from troth.routing import Address, Route, RoutedMessage, Router
from troth.storage.sqlite_mcp import SqliteMcpGrantors

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectSendStream
    from mcp.shared.message import SessionMessage

    from troth.integrations.mcp.gate import McpGate
    from troth.node.node import Node
    from troth.node.runtime import NodeRuntime

__all__ = [
    "MCP_PREFIX",
    "GrantedBundles",
    "McpService",
    "forget_grantors",
    "publish",
    "publish_upstream",
    "recorded_grantors",
]

log = logging.getLogger("troth.node.mcp")
MCP_PREFIX: Final = "mcp."
"""A published MCP server named N is the node service `mcp.N`."""
START_TIMEOUT: Final = 30.0
"""Seconds an upstream has to start and answer the MCP handshake."""


class GrantedBundles:
    """The node's bundles as a published MCP server's decision point sees them: only those of
    the authorities `grantors()` names grant its tools (docs/policy.md, "MCP over secure
    channels"). Another authority's bundle is as if none were in force (PolicyError NO_BUNDLE:
    its members see no tool and every call is denied "no policy bundle", the answer they get
    where their authority has none, so nothing tells them apart; review 37c, mcp 1: a
    co-trusted authority's permit-all bundle let its members call the host's tools)."""

    def __init__(self, bundles: PolicySource, grantors: Callable[[], frozenset[Identifier]]):
        self.bundles = bundles
        self.grantors = grantors

    def engine(self, authority: Identifier, *, feed: VerifiedFeed | None, now: int) -> PolicyEngine:
        """The engine of `authority`'s bundle in force, when `authority` may grant the tools."""
        if authority not in self.grantors():
            raise PolicyError(PolicyFailure.NO_BUNDLE)
        return self.bundles.engine(authority, feed=feed, now=now)


@dataclass(frozen=True, slots=True)
class _SharedHeld:
    """One session's part of the weight a server's sessions hold together: `shares` counted
    against the session's `authorities`, each authority's share of MAX_MCP_SERVER_HELD
    (troth.integrations.mcp.held.HeldPool; review 71a, mcpheld 6)."""

    shares: Shares
    authorities: frozenset[bytes]

    def room(self, size: int) -> bool:
        return self.shares.room(self.authorities, limits.MAX_MCP_SERVER_HELD, size)

    def take(self, size: int) -> None:
        self.shares.take(self.authorities, size)

    def release(self, size: int) -> None:
        self.shares.release(self.authorities, size)


@dataclass(eq=False)
class _Session:
    peer: str
    accounts: frozenset[bytes]  # whose sessions these count as (member_accounts)
    authorities: frozenset[bytes]  # whose share of the sessions (troth.node.shares)
    channel: str
    inbound: MemoryObjectSendStream[SessionMessage | Exception]
    held: HeldRequests  # its requests' weight until answered (review 70l, mcpwait 1)
    task: asyncio.Task[None] | None = field(default=None)


class McpService:
    """An upstream MCP server published as a node service (module docstring)."""

    oneway: Method | None = None

    def __init__(
        self,
        name: str,
        upstream: object,
        *,
        policies: NodePolicies,
        standing: Callable[[VerifiedPeer, int], Standing],
        channels: ChannelManager,
        router: Router,
        clock: Clock,
        recorder: DecisionRecorder | None = None,
        access: GatedPolicy | None = None,
        grantors: Callable[[], frozenset[Identifier]] | None = None,
    ) -> None:
        check_name(name, "MCP server")
        self.name = MCP_PREFIX + name
        self.upstream = upstream
        """What `mcp.Client` connects to: `StdioServerParameters` (a command it spawns), or
        an in-process `Server` / `MCPServer`."""
        self.policies = policies
        point = policies.decision_point(recorder)
        if grantors is not None:  # only the bundles of the authorities granting its tools
            point = DecisionPoint(
                GrantedBundles(policies, grantors),
                point.feeds,
                recorder=point.recorder,
                max_clock_skew=point.max_clock_skew,
            )
        self.point = point
        """Decides every tools/call (and records it, with `recorder`: the node's trace), with
        the bundles of the authorities `grantors` names only (review 37c, mcp 1)."""
        self.grantors = grantors
        self.standing = standing
        self.access = access
        """The node's decision point (the runtime's): a session's tools/calls are decided with
        the chains it admits to `send` only (`GatedPolicy.admits`; review 37a, mcp 1)."""
        self.channels = channels
        self.router = router
        self.clock = clock
        self.methods: dict[str, Method] = {"send": Method(self.send, GatedMembers())}
        self._rates = ByteBudgets(
            rate=limits.MCP_BYTES_PER_SECOND,
            burst=limits.MCP_BURST_BYTES,
            max_sources=limits.MAX_MCP_RATE_SOURCES,
        )
        self.sessions: dict[tuple[str, bytes], _Session] = {}
        # the weight their requests hold together, each authority's share (71a, mcpheld 6)
        self._held = Shares(lambda: len(self.policies.anchors))
        self.gate: McpGate | None = None
        self._made: McpGate | None = None  # the gate served, closed by `close` (its records)
        self.tools: list[str] = []
        self._stop = asyncio.Event()
        self._upstream: asyncio.Task[None] | None = None
        channels.closed_hooks.append(self._channel_closed)

    # -- the upstream ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Spawn the upstream and connect to it (its tools listed), or raise why not."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._upstream = asyncio.get_running_loop().create_task(self._run_upstream(ready))
        try:
            await asyncio.wait_for(asyncio.shield(ready), START_TIMEOUT)
        except BaseException:
            await self.close()
            raise

    async def _run_upstream(self, ready: asyncio.Future[None]) -> None:
        import anyio
        from mcp import Client

        from troth.integrations.mcp.gate import (
            McpGate,
            UpstreamChanges,
            upstream_error,
            upstream_said,
        )
        from troth.integrations.mcp.upstream import connectable

        changes = UpstreamChanges()  # its tool-list changes: listed again (review 48e, gates 2)
        try:
            async with (
                Client(connectable(self.upstream), cache=None, message_handler=changes) as client,  # type: ignore[arg-type]
                anyio.create_task_group() as listening,
            ):
                listening.start_soon(changes.watch, client)
                gate = McpGate(  # its tools are in Server::"<NAME>" (review 53c)
                    self.point,
                    client,
                    clock=self.clock,
                    changes=changes,
                    server=self.name.removeprefix(MCP_PREFIX),
                )
                try:  # the gate's listing, within its limits (review 57l, mcp 1)
                    self.tools = await gate.offered()
                except PolicyError as exc:  # a listing the gate refuses: not published
                    why = f"{self.name}: the upstream's tools are refused: {exc.detail}"
                    ready.set_exception(PolicyError(exc.reason, why))
                    listening.cancel_scope.cancel()
                    return
                self.gate = self._made = gate
                ready.set_result(None)
                await self._stop.wait()
                listening.cancel_scope.cancel()  # the listen stream ends with the upstream
        except Exception as exc:
            # the SDK's errors come in anyio's task groups: the server and why (review 30c)
            failed = upstream_error(exc, self.name) or exc
            if not ready.done():
                ready.set_exception(failed)
            else:
                log.error("%s: the upstream failed: %s", self.name, upstream_said(failed))
        finally:
            self.gate = None
            for session in list(self.sessions.values()):
                session.inbound.close()

    # -- sessions -------------------------------------------------------------------------------

    async def send(self, arguments: Any, context: RequestContext) -> None:
        """One frame from a peer: opens its session, feeds it, or ends it (RemoteError when
        the session is refused or has fallen behind)."""
        caller = context.caller
        if not isinstance(caller, PeerCaller) or not context.return_route:
            raise RemoteError("MCP sessions come over secure channels (else: troth mcp gate)")
        try:
            data, reply = cbor.expect_array(arguments, "send arguments [frame, reply]", 2)
            frame = McpFrame.decode(cbor.expect_bytes(data, "frame"))
            back = (context.return_route[0], Address("worker", cbor.expect_text(reply, "reply")))
        except TrothError as exc:  # DecodeError, RoutingError (not a worker address)
            raise RemoteError(f"malformed MCP frame: {exc}") from None
        key = (caller.channel, frame.session)
        session = self.sessions.get(key)
        if frame.message is None:
            if session is not None:
                session.inbound.close()
            return
        accounts = member_accounts(caller.peer) if session is None else session.accounts
        cost = max(len(frame.message), limits.MCP_MESSAGE_CHARGE)
        if not self._rates.take_all(accounts, cost, now=context.now):
            # every call is decided and may be signed into the log: per member, bounded (each
            # account or none: one short spent the others' for nothing, review 69x, wave4c 2)
            raise RemoteError(f"{self.name}: the member's MCP budget is spent, send again later")
        opened = session is None
        if session is None:
            session = self._open(key, caller, back, accounts)
        from troth.integrations.mcp.channel import decode_message

        try:
            item: SessionMessage | Exception = decode_message(frame.message)
        except DecodeError as exc:
            item = exc
        # a call's cost follows its values (69s, wave2 2), known once decoded: owed, never
        # refused after the decoding it paid for (review 70f, values 2: refused, a dense
        # frame's decoding cost its bytes only, and a session it opened stayed open)
        # its values counted as it is weighed, in one walk (review 71a, mcpheld 4)
        weighed = session.held.weigh(item, len(frame.message))
        valued = _values_charge(weighed) - cost
        if valued > 0:
            self._rates.owe(accounts, valued, now=context.now)
        # a request is held, decoded, until it is answered: the session's within its most
        # (review 70l, mcpwait 1: 72 a session by count only, each up to ~40x its frame)
        if not session.held.admit(weighed):
            if opened:  # never a session left open with nothing delivered (70f, values 2)
                session.inbound.close()
            raise RemoteError(
                f"{self.name}: the MCP session holds {session.held.total} bytes of requests "
                f"(at most {session.held.most}, a notification {loose_most()}; or the server's "
                "sessions hold its authorities' share of their most): send again later"
            )
        try:
            session.inbound.send_nowait(item)
        except Exception:  # full (the client outruns the session) or already closed
            session.inbound.close()
            raise RemoteError("the MCP session fell behind and is closed") from None

    def _open(
        self, key: tuple[str, bytes], caller: PeerCaller, back: Route, accounts: frozenset[bytes]
    ) -> _Session:
        gate = self.gate
        peer = str(caller.identifier)
        held = max(
            sum(1 for s in self.sessions.values() if account in s.accounts) for account in accounts
        )
        if gate is None:
            raise RemoteError(f"{self.name}: the upstream is not running")
        authorities = authorities_of(caller)
        shares = Shares.counted(
            lambda: len(self.policies.anchors), (s.authorities for s in self.sessions.values())
        )
        if not shares.room(authorities, limits.MAX_MCP_SESSIONS):
            raise RemoteError(
                f"{self.name}: {len(self.sessions)} sessions are open (the most: its share of "
                "them for each of the peer's authorities)"
            )
        if held >= limits.MAX_MCP_SESSIONS_PER_PEER:
            raise RemoteError(
                f"{self.name}: the peer's member holds {held} sessions, its delegates' included "
                "(the most)"
            )
        import anyio

        from troth.integrations.mcp.channel import run_session
        from troth.integrations.mcp.gate import gate_server

        inbound, read = anyio.create_memory_object_stream[Any](limits.MAX_MCP_QUEUE)
        weights = HeldRequests(limits.MAX_MCP_SESSION_HELD, _SharedHeld(self._held, authorities))
        session = _Session(peer, accounts, authorities, key[0], inbound, weights)
        channel = key[0]

        def current_peer() -> VerifiedPeer | None:
            end = self.channels.find(channel)
            return None if end is None else end.peer

        access = self.access
        admits = None if access is None else functools.partial(access.admits, self.name, "send")
        caller_now = PeerCredential(
            current_peer, self.standing, self.policies, admits, self.grantors
        )
        server = gate_server(gate, caller_now)

        async def send(frame: bytes) -> bool:
            return await self._send(back, frame)

        async def run() -> None:
            try:
                await run_session(server, read, key[1], send, weights)
            except Exception:
                log.exception("%s: a session of %s failed", self.name, peer)
            finally:
                self.sessions.pop(key, None)
                weights.close()  # what it held, queued or waiting, is the pool's again

        self.sessions[key] = session
        session.task = asyncio.get_running_loop().create_task(run())
        return session

    async def _send(self, back: Route, frame: bytes) -> bool:
        try:
            await self.router.route(RoutedMessage(back, (), frame))
        except Exception as exc:  # the channel is gone (RoutingError) or refused it
            log.info("%s: %s", self.name, exc)
            return False
        return True

    def _channel_closed(self, end: ChannelEnd) -> None:
        for (channel, _), session in list(self.sessions.items()):
            if channel == end.id:
                session.inbound.close()

    # -- NodeService --------------------------------------------------------------------------

    async def maintain(self, now: int) -> None:
        """End the sessions whose channel is gone."""
        self._rates.prune(now=now)
        for (channel, _), session in list(self.sessions.items()):
            if self.channels.find(channel) is None:
                session.inbound.close()

    def status(self) -> dict[str, Any]:
        """The upstream, its tools and the open sessions."""
        command = getattr(self.upstream, "command", None)
        return {
            "upstream": command if isinstance(command, str) else type(self.upstream).__name__,
            "running": self.gate is not None,
            "tools": list(self.tools),
            "sessions": len(self.sessions),
        }

    async def close(self) -> None:
        """End every session and stop the upstream."""
        if self._channel_closed in self.channels.closed_hooks:
            self.channels.closed_hooks.remove(self._channel_closed)
        tasks = [s.task for s in self.sessions.values() if s.task is not None]
        for session in list(self.sessions.values()):
            session.inbound.close()
        self._stop.set()
        if self._upstream is not None:
            tasks.append(self._upstream)
        # all of them together, within MCP_CLOSE_SECONDS, then those left cancelled; a
        # cancellation of this close goes on (review 63v, stop 3: up to 10 s for each, one
        # after another, never cancelled, the close's own cancellation swallowed)
        if not tasks:
            await self._close_gate()
            return
        try:
            _, left = await asyncio.wait(tasks, timeout=limits.MCP_CLOSE_SECONDS)
        except asyncio.CancelledError:  # cut short (a node's stop past the stage's share):
            for task in tasks:  # none left running (review 63v2, stop 2)
                task.cancel()
            raise
        for task in left:
            task.cancel()
        if left:
            log.warning(
                "%s: %d of its tasks did not end when closed: cancelled", self.name, len(left)
            )
            # their calls' refusals queued as they end (the gate waits for no recorder)
            await asyncio.wait(left, timeout=limits.MCP_GATE_DRAIN_SECONDS)
        await self._close_gate()

    async def _close_gate(self) -> None:
        """The gate decides no more calls; the records under way on its threads written (up
        to MCP_GATE_DRAIN_SECONDS) before the node's trace client closes (review 64a, mcp 1)."""
        gate, self._made = self._made, None
        if gate is not None and not await gate.close():
            log.warning("%s: calls were still being recorded when closed", self.name)


_STARTING: Final[weakref.WeakKeyDictionary[NodeRuntime, set[str]]] = weakref.WeakKeyDictionary()
"""Per runtime, the MCP services whose upstream is starting (their names taken)."""


async def publish(
    runtime: NodeRuntime,
    name: str,
    command: list[str],
    *,
    cwd: str | None,
    grantable_by: tuple[Identifier, ...] = (),
) -> dict[str, Any]:
    """Publish upstream `command` as MCP server `name` on a running node (ConflictError when
    that name is published already): the service's address and the upstream's tools (the
    authorities whose bundles grant them: `publish_upstream`)."""
    from mcp import StdioServerParameters

    if MCP_PREFIX + name in runtime.host.services:
        raise ConflictError(f"MCP server {name} is already published on node {runtime.name}")
    if not command:
        raise ValueError("an MCP server needs an upstream command")
    parameters = StdioServerParameters(command=command[0], args=command[1:], cwd=cwd)
    return await publish_upstream(runtime, name, parameters, grantable_by=grantable_by)


async def publish_upstream(
    runtime: NodeRuntime,
    name: str,
    upstream: object,
    *,
    grantable_by: tuple[Identifier, ...] = (),
) -> dict[str, Any]:
    """Publish `upstream` (what `mcp.Client` connects to) as MCP server `name` on a running
    node: the service's address, the upstream's tools and the authorities granting them. Only
    the bundles of the authorities `grantable_by` names decide its tools; naming none, the
    node's own (`NodeTrust.own_authorities`: the authority it hosts, else the one it trusts when
    it trusts exactly one; review 37c, mcp 1), fixed at publication on a node hosting none, as
    `put_secret` records a secret's, so the node's later enrollments neither take the tools
    from that authority nor grant them to another (review 38a, mcp 1); a node that had none
    then (trusting none yet, or several) keeps the first it has once it has one, its first
    enrollment's (`_first_own`; review 39b, mcp 1). The grantors are recorded in the node's
    store by the server's name (`mcp_grantors`) when first fixed or when named: the same name
    published again naming none takes the recorded ones, after a restart too; naming some
    replaces the record (review 39b, mcp 2; `forget_grantors` forgets it; past
    MAX_MCP_GRANTOR_RECORDS names a new one is refused, ConflictError, before the upstream
    starts), once the upstream has started: a publication refused records nothing (review
    41c, mcp 1). The name is taken before the
    upstream starts: a second publication of it meanwhile is refused (ConflictError) and
    starts nothing (review 34d, node home 4: it replaced the first among the node's services,
    then failed on the taken route, its upstream left running, served by nothing)."""
    check_name(name, "MCP server")  # before anything is recorded for it (review 40c, mcp 2)
    if len(set(grantable_by)) > limits.MAX_MCP_GRANTORS:
        raise PolicyError(
            PolicyFailure.OVER_LIMIT,
            f"grantable_by names at most {limits.MAX_MCP_GRANTORS} authorities, "
            f"not {len(set(grantable_by))}",
        )
    starting = _STARTING.setdefault(runtime, set())
    if MCP_PREFIX + name in runtime.host.services or MCP_PREFIX + name in starting:
        raise ConflictError(f"MCP server {name} is already published on node {runtime.name}")
    service_name = MCP_PREFIX + name
    starting.add(service_name)  # taken before the store is read: no await before this
    try:
        store = SqliteMcpGrantors(runtime.node.db)
        grantors, to_record = await _grantors(runtime, store, name, frozenset(grantable_by))
        if to_record is not None:  # a full record refuses a new name before anything starts
            await runtime.worker.run(
                lambda: store.check_room(name, limit=limits.MAX_MCP_GRANTOR_RECORDS)
            )
        service = McpService(
            name,
            upstream,
            policies=runtime.policies,
            standing=runtime.trust.standing,
            channels=runtime.channels,
            router=runtime.router,
            clock=runtime.clock,
            recorder=runtime.traces.decision_recorder(),
            access=runtime.access,
            grantors=grantors,
        )
        await service.start()
        if to_record is not None:  # recorded once served: a refused publication records
            try:  # nothing (review 41c, mcp 1)
                await runtime.worker.run(lambda: _record(runtime, store, name, to_record))
            except BaseException:
                await service.close()
                raise
        runtime.add_service(service)
    finally:
        starting.discard(service_name)
    return {
        "service": service.name,
        "address": f"/service/{service.name}",
        "tools": service.tools,
        "grantable_by": sorted(str(authority) for authority in grantors()),
    }


async def _grantors(
    runtime: NodeRuntime, store: SqliteMcpGrantors, name: str, named: frozenset[Identifier]
) -> tuple[Callable[[], frozenset[Identifier]], frozenset[Identifier] | None]:
    """Server `name`'s grantors (review 39b, mcp 2; docs/policy.md, "MCP over secure
    channels") and those to record once it is served (None: nothing): the authorities named,
    recorded in place of any record of the name; naming none, those recorded for the name;
    without a record, the node's own now, recorded; a node with none (trusting none yet, or
    several) records the first it has (`_first_own`). Nothing is written here: a publication
    refused after this (its upstream not started) leaves the record as it was (review 41c,
    mcp 1: it replaced it, and a new name took a slot of the record for good)."""
    if not named:
        recorded = await runtime.worker.run(lambda: store.get(name))
        if recorded is not None:
            return _fixed(frozenset(Identifier.parse(text) for text in recorded)), None
        named = runtime.trust.own_authorities()
        if not named:
            first = _first_own(
                runtime.trust.own_authorities,
                lambda found: _record_later(runtime, store, name, found),
            )
            return first, None
    return _fixed(named), named


def _values_charge(weighed: Weighed) -> int:
    """What a tools/call message costs of its member's MCP budget for its arguments' values
    (MCP_VALUE_CHARGE each, counted up to one past MAX_TOOL_ARGUMENT_VALUES, the most a call
    is decided with: `Weighed.values`, counted as the message is weighed, review 71a,
    mcpheld 4), owed once it is decoded (review 70f, values 2); 0 for any other message."""
    return weighed.values * limits.MCP_VALUE_CHARGE


def _fixed(authorities: frozenset[Identifier]) -> Callable[[], frozenset[Identifier]]:
    return lambda: authorities


def _record(
    runtime: NodeRuntime, store: SqliteMcpGrantors, name: str, grantors: frozenset[Identifier]
) -> None:
    store.record(
        name,
        (str(authority) for authority in grantors),
        now=runtime.clock.now(),
        limit=limits.MAX_MCP_GRANTOR_RECORDS,
    )


def _record_later(
    runtime: NodeRuntime, store: SqliteMcpGrantors, name: str, grantors: frozenset[Identifier]
) -> None:
    """Record the grantors `_first_own` fixed at a decision: queued on the node's storage
    thread, never written on the deciding thread (the event loop, when no trace log records
    decisions: a write lock another process held stalled every channel of the node; review
    40c, mcp 1). A failure is logged; they are kept in memory while published, as before the
    record existed."""

    def record() -> None:
        try:
            _record(runtime, store, name, grantors)
        except TrothError as exc:
            log.warning("MCP server %s: its grantors are not recorded: %s", name, exc)

    runtime.worker.submit(record)


def forget_grantors(node: Node, name: str) -> bool:
    """Forget the recorded grantors of MCP server `name` on `node` (False: none were
    recorded): its next publication naming no authority takes the node's own authority
    then, as a first publication does. A running publication keeps its grantors until it
    ends (docs/policy.md, "MCP over secure channels")."""
    return SqliteMcpGrantors(node.db).forget(name)


def recorded_grantors(node: Node, name: str) -> tuple[Identifier, ...] | None:
    """The grantors recorded for MCP server `name` on `node` (None: nothing recorded)."""
    recorded = SqliteMcpGrantors(node.db).get(name)
    return None if recorded is None else tuple(Identifier.parse(text) for text in recorded)


def _first_own(
    own: Callable[[], frozenset[Identifier]],
    record: Callable[[frozenset[Identifier]], None] = lambda _: None,
) -> Callable[[], frozenset[Identifier]]:
    """A server's grantors when the node had no own authority at its publication (it trusted
    none yet, or several): `own()` at each call until it names some (the node's first
    enrollment, or the one left trusted), then those, kept for as long as the server is
    published, as `_fixed` keeps the one it had (review 39b, mcp 1: a server published before
    the node's first enrollment lost its tools to the second)."""
    kept: list[frozenset[Identifier]] = []
    lock = threading.Lock()

    def grantors() -> frozenset[Identifier]:
        if kept:
            return kept[0]
        found = own()
        if found:
            fixed = False
            with lock:
                if not kept:
                    kept.append(found)
                    fixed = True
            if fixed:  # recorded once, outside the lock (review 39b, mcp 2)
                record(found)
            return kept[0]
        return found

    return grantors
