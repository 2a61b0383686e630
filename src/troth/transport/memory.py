"""An in-memory network with the TCP transport's interface, for tests and simulations where TCP
is not the point: nodes listen on and connect to `host:port` names inside one `MemoryNetwork`
(routes stay `/tcp/host:port/...`), messages cross as encoded frames (the same size limit and
the same decoding as on the wire), in order, through a bounded queue per connection.

    network = MemoryNetwork()
    hub = MemoryTransport(hub_router, network, host="10.0.0.1")
    await hub.listen("hub", 4000, Listener(addresses=frozenset({LISTENER})))
    node = MemoryTransport(node_router, network, host="10.0.0.2")
    await node_router.route(RoutedMessage(parse_route("/tcp/hub:4000/service/channels"), ...))
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextlib
import itertools
import logging
from dataclasses import dataclass, field

from troth import limits
from troth.errors import RoutingError, TrothError, Unreachable
from troth.routing import Address, RoutedMessage, Router, Source
from troth.transport.connection import Connection, ConnectionTable, Listener

__all__ = ["MemoryConnection", "MemoryNetwork", "MemoryTransport"]

log = logging.getLogger("troth.transport.memory")
MAX_QUEUED_FRAMES = 256  # frames waiting to be routed before senders wait


class MemoryConnection(Connection):
    """One side of an in-memory connection: a worker (messages out) and a Source."""

    def __init__(
        self, owner: MemoryTransport, *, outgoing: bool, listener: Listener | None, peer: str
    ) -> None:
        super().__init__(
            kind="tcp",
            outgoing=outgoing,
            listener=listener,
            peer=peer,
            max_reply_paths=owner.max_reply_paths,
        )
        self.owner = owner
        self.other: MemoryConnection | None = None
        self.closed = asyncio.Event()
        self.frames_read = 0
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(MAX_QUEUED_FRAMES)
        self._consumer: asyncio.Task[None] | None = None

    def _start(self) -> None:
        self._consumer = asyncio.get_running_loop().create_task(self._consume())

    async def send(self, message: RoutedMessage) -> None:
        """Hand one message to the other side (waits while its queue is full)."""
        other = self.other
        if other is None or self.closed.is_set() or other.closed.is_set():
            raise Unreachable(f"{self.name} is closed")
        if message.return_route:
            self.allowed.allow(message.return_route[0])  # replies may come back to the sender
        body = message.encode()
        if len(body) > limits.MAX_TRANSPORT_FRAME:
            raise RoutingError(f"message of {len(body)} bytes over the frame limit")
        self.frames_sent += 1
        await other._queue.put(bytes(body))

    async def _consume(self) -> None:
        router = self.owner.router
        while True:
            body = await self._queue.get()
            self.frames_read += 1
            try:
                message = self.arrived(body)
            except TrothError as exc:
                log.info("%s: dropped a malformed message: %s", self.name, exc)
                continue
            for observe in self.owner.observers:
                observe(self, message)
            try:
                await router.route(message, self)
            except TrothError as exc:
                log.info("%s: dropped a message: %s", self.name, exc)
            except Exception:  # a bug must not stop this connection: log it, drop the message
                log.exception("%s: a message failed", self.name)

    async def close(self) -> None:
        """Close both sides (as a TCP close reaches the peer)."""
        for side in (self, self.other):
            if side is None or side.closed.is_set():
                continue
            side.closed.set()
            side.owner._drop(side)
            consumer = side._consumer
            if consumer is not None and consumer is not asyncio.current_task():
                consumer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await consumer


class MemoryNetwork:
    """The `host:port` names that memory transports listen on."""

    def __init__(self) -> None:
        self._listening: dict[tuple[str, int], tuple[MemoryTransport, Listener]] = {}
        self._ports = itertools.count(40000)

    def _bind(self, host: str, port: int, transport: MemoryTransport, listener: Listener) -> int:
        if port == 0:
            port = next(p for p in self._ports if (host, p) not in self._listening)
        if (host, port) in self._listening:
            raise RoutingError(f"{host}:{port} is taken")
        self._listening[(host, port)] = (transport, listener)
        return port

    def _unbind(self, transport: MemoryTransport) -> None:
        for key, (owner, _) in list(self._listening.items()):
            if owner is transport:
                del self._listening[key]

    def _connect(self, client: MemoryTransport, host: str, port: int) -> MemoryConnection:
        found = self._listening.get((host, port))
        if found is None:
            raise Unreachable(f"cannot connect to {host}:{port}: connection refused")
        server, listener = found
        mine = MemoryConnection(client, outgoing=True, listener=None, peer=f"{host}:{port}")
        theirs = MemoryConnection(
            server, outgoing=False, listener=listener, peer=f"{client.host}:{next(self._ports)}"
        )
        mine.other, theirs.other = theirs, mine
        for side in (mine, theirs):
            side.owner._started(side)
        return mine


@dataclass
class MemoryTransport(ConnectionTable[MemoryConnection]):
    """A router's transport for `tcp` addresses inside a MemoryNetwork."""

    router: Router
    network: MemoryNetwork
    host: str = "127.0.0.1"
    """The address this transport's connections come from (what per-source limits see)."""
    kind: str = "tcp"
    max_reply_paths: int = 4096
    observers: list[collections.abc.Callable[[MemoryConnection, RoutedMessage], None]] = field(
        default_factory=list
    )
    """Called with every message that arrives (what a relay sees)."""
    lost: list[collections.abc.Callable[[Address], None]] = field(default_factory=list)
    """Called with the worker address of every connection that closed (its channels die)."""
    _connections: dict[str, MemoryConnection] = field(default_factory=dict)
    _all: set[MemoryConnection] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.router.add_transport(self)

    async def listen(self, host: str, port: int, listener: Listener) -> tuple[str, int]:
        """Accept connections at host:port (port 0: a free one)."""
        return host, self.network._bind(host, port, self, listener)

    async def connect(self, host: str, port: int) -> MemoryConnection:
        """The open connection to host:port, or a new one."""
        key = f"{host}:{port}"
        existing = self._connections.get(key)
        if existing is not None and not existing.closed.is_set():
            return existing
        connection = self.network._connect(self, host, port)
        self._connections[key] = connection
        return connection

    def _started(self, connection: MemoryConnection) -> None:
        self._all.add(connection)

        async def worker(message: RoutedMessage, source: Source | None) -> None:
            await connection.send(message)

        self.router.register(connection.address, worker)
        connection._start()

    async def close(self) -> None:
        """Stop listening and close every connection."""
        self.network._unbind(self)
        for connection in list(self._all):
            await connection.close()
