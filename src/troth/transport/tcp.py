"""The TCP transport (the asyncio adapter around the sans-IO `FrameReader`): connect and
listen; every connection is a router worker (`/worker/tcp-...`) and a message Source with its
own allow-set (docs/protocols.md, "TCP transport").

Reading uses `asyncio.BufferedProtocol`: the kernel writes into the FrameReader's buffer
(recv_into), frames are cut out of it with a single copy, and they are routed in order: from
the read callback itself while nothing routed before them waits (`start_eagerly`), else by a
consumer task once it has. (A StreamReader would copy every byte twice more and memmove its
buffer per read.) The frames written while the read callback routes are written together when
it returns.

Hostile load (all limits in `TcpSettings`):
- Connections: accepted connections are capped in total and per source IP address; at the cap
  a new connection evicts one that brought no frame yet (of the network, then the source,
  holding the most of those, of networks holding no fewer than the newcomer's) or has been
  idle a while, else it is refused.
- Timeouts: connecting gives up after `connect_timeout`; a connection must bring its first
  frame within `first_frame_timeout`, a started frame must finish within `frame_timeout`, and a
  connection that makes no progress for `idle_timeout` is closed (one sweep timer checks them:
  `troth.transport.liveness`; at a node only authenticated progress counts).
- Memory: read buffers shrink back once a connection is quiet or light (the sweep); reading
  pauses while `max_queued_frames` frames wait to be routed, or, while it holds frames that do,
  past their bytes' bound for the node (`max_routing_total`) or its source (a quarter; the
  node's own outgoing connections: a reserved quarter apart, `troth.transport.inbound`), and
  the consumer awaits each routing, so a slow consumer slows its producers.
- Writing: while more than `write_buffer` bytes wait for the socket, frames sent to the
  connection wait in its queue instead (at most `max_queued_bytes`, the connections of one peer
  address together at most `queued_per_source`, all of them at most `max_queued_total`),
  and the sender goes on: the connection a relayed frame came from
  goes on routing. Past the bound a sender waits while the peer reads (backpressure); a peer
  that takes (next to) nothing for `stall_timeout` has stalled, and its queue and every frame
  for it are dropped (counted, `Congested` to the sender) until it drains; one that does not
  drain for `write_timeout` is dropped. While the write buffers together hold more than
  `write_buffer_total`, one left holding unsent bytes by a write is full until it drains.
- Logs: lines about misbehaving connections and accept() errors (out of descriptors) are rate
  limited; a listener out of descriptors pauses a second and recovers when they free up.
- Shutdown: `close()` closes listeners and every connection at once, then awaits their tasks,
  cancelled, together (a connect under way is ended at once, its callers told Unreachable, and
  no connection is made or admitted after it); a closed connection whose peer does not take
  what was left within `write_timeout` is dropped.
"""

from __future__ import annotations

import asyncio
import collections
import collections.abc
import contextlib
import logging
import os
from dataclasses import dataclass, field

from troth.errors import ConfigError, Unreachable
from troth.routing import Address, Handler, RoutedMessage, Router, Source
from troth.transport.budget import WriteBudget
from troth.transport.connection import Connection, ConnectionTable, Listener
from troth.transport.eviction import Refusals, ShieldSpends, eviction_candidate
from troth.transport.frameless import Frameless
from troth.transport.holds import SourceHolds
from troth.transport.inbound import RoutingBudget
from troth.transport.ratelog import RateLimitedLog, install_accept_error_filter
from troth.transport.settings import SHIELD_SPENDS_PER_CONNECTION, TcpCounters, TcpSettings
from troth.transport.tcp_connection import CORK_LIMIT as CORK_LIMIT
from troth.transport.tcp_connection import EAGER_LIMIT as EAGER_LIMIT
from troth.transport.tcp_connection import TcpConnection

__all__ = ["Listener", "TcpConnection", "TcpTransport"]

log = logging.getLogger("troth.transport.tcp")


@dataclass
class TcpTransport(ConnectionTable[TcpConnection]):
    """TCP for a router: outgoing connections by `host:port`, listeners, and the limits."""

    router: Router
    settings: TcpSettings = field(default_factory=TcpSettings.from_environment)
    """Default: `TcpSettings` with the `TROTH_TCP_*` environment variables applied."""
    kind: str = "tcp"
    counters: TcpCounters = field(default_factory=TcpCounters)
    observers: list[collections.abc.Callable[[TcpConnection, RoutedMessage], None]] = field(
        default_factory=list
    )
    """Called with every message that arrives (what a relay sees: tests and the demo)."""
    authenticated_idle: bool = False
    """True at a node: only authenticated progress (`Connection.progressed`, which its channels
    and relayed answers call) keeps a connection from idling out or being evicted as idle;
    else any frame either way does (review 50e, idle 1: `troth.transport.liveness`)."""
    relayed_progress: tuple[int, int] = (0, -1)
    """(offset, byte) the node sets: a frame relayed to a connection counts as its progress only
    with that byte there (a channel's transport frame, not a handshake step; review 50k, idle 1)."""
    lost: list[collections.abc.Callable[[Address], None]] = field(default_factory=list)
    """Called with the worker address of every connection that closed (its channels die), and
    an outgoing one's `/tcp/host:port` (the handshakes opened on it fail at once)."""
    _connections: dict[str, TcpConnection] = field(default_factory=dict)
    _connecting: dict[str, asyncio.Task[TcpConnection]] = field(default_factory=dict)
    """The connects under way, by `host:port` (each caller for it waits for the one)."""
    _all: set[TcpConnection] = field(default_factory=set)
    _accepted: dict[TcpConnection, None] = field(default_factory=dict)  # oldest first
    _per_host: collections.Counter[str] = field(default_factory=collections.Counter)
    _per_network: collections.Counter[str] = field(default_factory=collections.Counter)
    _unproven: Frameless[TcpConnection] = field(default_factory=Frameless)
    """The accepted connections that brought no frame yet (at a node: made no progress yet),
    oldest first, by source address (what `eviction_candidate` takes first; review 60f,
    listener 1), each taken out as it does (`proved`; review 60i, listener 2)."""
    _spends: ShieldSpends = field(init=False)
    """The networks whose newcomer evicted another network's connection mid-handshake (within
    `first_frame_timeout`), each at most once per that time (review 67c, transport 1)."""
    _refusals: Refusals = field(default_factory=Refusals)
    """At the cap: that no connection gives way, known until a connection first makes progress
    or the sweep runs, raised as one comes (review 60f, listener 1: each refused newcomer scanned
    the whole table; review 67p, transport 2)."""
    holds: SourceHolds[TcpConnection] = field(default_factory=SourceHolds)
    """The accepted connections by source, and the sources held back from reading past their
    share of the routing budget (review 55a, budget 1)."""
    _listeners: list[Listener] = field(default_factory=list)
    _sweeper: asyncio.TimerHandle | None = None
    _log: RateLimitedLog | None = None
    queued_bytes: int = 0
    """Bytes of frames queued for all connections whose write buffers are full (at most
    `settings.max_queued_total`)."""
    space_waiters: list[asyncio.Future[None]] = field(default_factory=list)
    """Senders waiting for the queues together to hold less."""
    _queued_by_source: dict[str, int] = field(default_factory=dict)
    """Queued bytes per peer IP address (at most `settings.queued_per_source` each)."""
    reading: list[TcpConnection] | None = None
    """While a read callback routes what arrived: the connections with frames corked meanwhile
    (written together when it returns)."""
    closing: bool = False
    """`close()` began: no connection is made or admitted from then on (review 64e, transport
    1: a connect under way as it closed finished after it, and that connection, and the sweep
    timer it started again, stayed for good)."""
    budget: WriteBudget = field(init=False)
    """The write buffers of all connections together (`settings.write_buffer_total`)."""
    inbound: RoutingBudget = field(init=False)
    """The frames read that wait to be routed (`settings.max_routing_total`)."""

    def __post_init__(self) -> None:
        self.router.add_transport(self)
        self.budget = WriteBudget(self.settings.write_buffer_total)
        settings = self.settings
        kept = SHIELD_SPENDS_PER_CONNECTION * settings.max_connections
        self._spends = ShieldSpends(settings.first_frame_timeout, kept)
        self.inbound = RoutingBudget.of(self.settings)
        self._log = RateLimitedLog(log, self.settings.log_lines_per_minute)

    def queued_from(self, host: str) -> int:
        """Bytes queued for the connections of peer address `host` together."""
        return self._queued_by_source.get(host, 0)

    def charge_queue(self, host: str, size: int) -> None:
        """Count `size` more (or, negative, fewer) queued bytes, in all and for `host`."""
        self.queued_bytes += size
        held = self._queued_by_source.get(host, 0) + size
        if held:
            self._queued_by_source[host] = held
        else:
            self._queued_by_source.pop(host, None)

    def warn(self, message: str, *args: object) -> None:
        """Log a misbehaving connection (rate limited)."""
        if self._log is not None:
            self._log.log(logging.WARNING, message, *args)

    def note(self, message: str, *args: object) -> None:
        """Log a dropped message (rate limited)."""
        if self._log is not None:
            self._log.log(logging.INFO, message, *args)

    async def listen(self, host: str, port: int, listener: Listener) -> tuple[str, int]:
        """Accept connections on host:port; each may reach what `listener` allows."""
        loop = asyncio.get_running_loop()
        install_accept_error_filter(loop, log, self.settings.accept_errors_per_minute)

        def accepted() -> TcpConnection:
            return TcpConnection(self, outgoing=False, listener=listener, peer="?")

        try:
            server = await loop.create_server(accepted, host, port)
        except (OSError, ValueError) as exc:  # a name that does not resolve or is no name
            # (IDNA refuses it, a NUL), a port in use: said, typed
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ConfigError(f"cannot listen on {host}:{port}: {reason}") from None
        bound = server.sockets[0].getsockname()
        listener.server = server
        self._listeners.append(listener)
        return bound[0], bound[1]

    async def connect(self, host: str, port: int) -> TcpConnection:
        """The open connection to host:port, or a new one: the callers that ask while it is
        being made wait for that one (review 64e, transport 2: each opened its own)."""
        key = f"{host}:{port}"
        existing = self._connections.get(key)
        if existing is not None and not existing.closed.is_set():
            return existing
        if self.closing:
            raise Unreachable(f"cannot connect to {key}: the transport is closed")
        making = self._connecting.get(key)
        if making is None:  # a task of its own: one caller cancelled stops no other's wait
            making = asyncio.get_running_loop().create_task(self._open(host, port, key))
            self._connecting[key] = making
            making.add_done_callback(lambda task: self._made(key, task))
        try:
            return await asyncio.shield(making)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if making.cancelled() and self.closing and task is not None and not task.cancelling():
                # `close()` ended the connect: its callers are told, not cancelled
                raise Unreachable(f"cannot connect to {key}: the transport is closed") from None
            raise

    def _made(self, key: str, task: asyncio.Task[TcpConnection]) -> None:
        """A connect ended: the next caller for `key` finds its connection (or tries again);
        a failure every caller stopped waiting for is not left unretrieved."""
        if self._connecting.get(key) is task:
            del self._connecting[key]
        if not task.cancelled():
            task.exception()

    async def _open(self, host: str, port: int, key: str) -> TcpConnection:
        loop = asyncio.get_running_loop()
        connection = TcpConnection(self, outgoing=True, listener=None, peer=key)
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: connection, host, port),
                self.settings.connect_timeout,
            )
        except TimeoutError:
            raise Unreachable(f"connecting to {key} timed out") from None
        except OSError as exc:
            why = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            raise Unreachable(f"cannot connect to {key}: {why}") from None
        if self.closing:  # closed meanwhile: `_admit` refused it (aborted)
            raise Unreachable(f"cannot connect to {key}: the transport is closed")
        self._connections[key] = connection
        return connection

    def _admit(self, connection: TcpConnection) -> bool:
        """A new connection against the limits (outgoing ones are this node's own); none once
        the transport is closing."""
        if self.closing:
            return False
        if not connection.outgoing:
            settings, counters = self.settings, self.counters
            if self._per_host[connection.host] >= settings.max_connections_per_source:
                counters.refused_per_source += 1
                self.warn(
                    "%s: refused: too many connections from %s", connection.name, connection.host
                )
                return False
            if len(self._accepted) >= settings.max_connections:
                counts = (
                    self._per_host.get(connection.host, 0),
                    self._per_network.get(connection.network, 0),
                )
                victim, now, network = None, connection.liveness.opened_at, connection.network
                spent = self._spends.spent(network, now)  # (67c, transport 1)
                alone = spent and not self._unproven.holds(network)
                if not self._refusals.known(counts, now, alone):
                    victim = eviction_candidate(
                        self._accepted,
                        connection,
                        self._per_host,
                        self._per_network,
                        strict=self.authenticated_idle,  # at a node: progress (50e, idle 2)
                        evict_idle_after=settings.evict_idle_after,
                        refusals=self._refusals,
                        unproven=self._unproven,
                        shielded_for=settings.first_frame_timeout,  # a handshake's time (66v, 1)
                        spent=spent,
                    )
                if victim is None:
                    counters.refused_over_limit += 1
                    self.warn("%s: refused: at %d connections", connection.name, len(self._all))
                    return False
                counters.evicted += 1
                if (
                    victim in self._unproven
                    and victim.network != network
                    and now - victim.liveness.opened_at < settings.first_frame_timeout
                ):
                    self._spends.spend(network, now)  # another's mid-handshake (67c, 1)
                self.warn("%s: evicted for a new connection", victim.name)
                victim._abort()
                self._forget(victim)
            counters.accepted += 1
            self._accepted[connection] = None
            self._unproven.add(connection, connection.host)
            self._per_host[connection.host] += 1
            self._per_network[connection.network] += 1
            counts = (self._per_host[connection.host], self._per_network[connection.network])
            shield = connection.liveness.opened_at + settings.first_frame_timeout
            self._refusals.admitted(counts, shield)  # (not forgotten: review 67p, transport 2)
            self.holds.add(connection)  # held at once when its source is
        self._all.add(connection)
        self.router.register(connection.address, connection_worker(connection))
        if self._sweeper is None:
            self._sweep()
        return True

    def proved(self, connection: TcpConnection) -> None:
        """`connection` brought its first frame or made its first progress: once it has what
        the eviction rule asks (at a node, progress), it is no longer among the frameless ones
        to give way (review 60i, listener 2: each newcomer looked at them all to find out)."""
        if connection.progress if self.authenticated_idle else connection.frames_read:
            self._unproven.discard(connection)
            self._refusals.forget()  # (one kept frameless may now give way as idle: 66v, 1)

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._refusals.forget()  # (what it sees may let a connection give way)
        for connection in list(self._all):
            connection._check(now)
        self._sweeper = loop.call_later(self.settings.sweep_interval, self._sweep)

    def _forget(self, connection: TcpConnection) -> None:
        if connection not in self._all:
            return
        self._all.discard(connection)
        if connection in self._accepted:
            del self._accepted[connection]
            self._unproven.discard(connection)  # (the refusal remembered still holds: only
            # fewer held, review 67p, transport 2)
            self.holds.remove(connection)
            for counts, key in (
                (self._per_host, connection.host),
                (self._per_network, connection.network),
            ):
                counts[key] -= 1
                if not counts[key]:
                    del counts[key]
        self._drop(connection)

    async def close(self) -> None:
        """Close listeners and connections; stop the sweep. No connection is made or admitted
        from now on (a connect under way fails: Unreachable)."""
        self.closing = True
        # the connects under way ended now, not at their timeout (review 64k, transport 1: a
        # peer that never answered held every caller and the socket `connect_timeout` longer)
        connecting = list(self._connecting.values())
        for making in connecting:
            making.cancel()
        for listener in self._listeners:
            if listener.server is not None:
                listener.server.close()
        # each closed at once, then their routings awaited together: one whose routing outlasts
        # its cancellation holds no other connection open (review 64e, transport 3)
        await asyncio.gather(*(connection.close() for connection in list(self._all)))
        await asyncio.gather(*connecting, return_exceptions=True)
        for listener in self._listeners:
            if listener.server is not None:
                with contextlib.suppress(Exception):
                    await listener.server.wait_closed()
        self._listeners.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None


def connection_worker(connection: TcpConnection) -> Handler:
    """The worker at a connection's address: whatever is routed to it goes out on the wire."""

    async def handle(message: RoutedMessage, source: Source | None) -> None:
        if isinstance(source, Connection) and source is not connection:  # a relay owner's
            at, mark = connection.owner.relayed_progress  # frame back to the peer it answers
            payload = message.payload  # (review 50e, idle 1): only a transport frame (50k)
            if len(payload) > at and payload[at] == mark:
                connection.progressed()
        await connection.send(message)

    return handle
