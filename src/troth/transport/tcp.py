"""The TCP transport (asyncio): connect and listen on loopback or any interface; every
connection is a router worker (`/worker/tcp-...`) and a message Source with its own allow-set.

- Timeouts: connecting gives up after `connect_timeout`; a frame started must finish within
  `frame_timeout` (a peer that stalls mid-frame is dropped).
- Backpressure: `send` awaits the socket's drain, and a connection's reader awaits the routing
  of each frame before reading the next, so a slow consumer slows its producers; nothing
  buffers without bound.
- Shutdown: `close()` closes listeners and connections and waits for their tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from troth.errors import DecodeError, RoutingError, TrothError
from troth.routing import Address, Handler, RoutedMessage, Router, Source, new_worker_address
from troth import limits
from troth.transport.framing import FRAME_HEADER, FRAME_VERSION, check_header

__all__ = ["Listener", "TcpConnection", "TcpTransport"]

log = logging.getLogger("troth.transport.tcp")


@dataclass
class Listener:
    """What a listening socket's connections may reach by default."""

    addresses: frozenset[Address] = frozenset()
    kinds: frozenset[str] = frozenset()  # every address of these kinds (e.g. "relay")
    server: asyncio.Server | None = None
    host: str = ""
    port: int = 0


class TcpConnection:
    def __init__(
        self,
        transport: TcpTransport,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        outgoing: bool,
        listener: Listener | None,
        peer: str,
    ) -> None:
        self.transport = transport
        self.reader = reader
        self.writer = writer
        self.outgoing = outgoing
        self.address = new_worker_address("tcp")
        self.name = f"tcp {peer} ({'out' if outgoing else 'in'})"
        self.peer = peer
        self._kinds = listener.kinds if listener else frozenset()
        self._allowed: set[Address] = set(listener.addresses) if listener else set()
        self.closed = asyncio.Event()
        self.frames_in = 0
        self.bytes_in = 0
        self.on_frame: Callable[[RoutedMessage], None] | None = None  # observation hook (tests)

    # -- Source ----------------------------------------------------------------------------------

    def allows(self, address: Address) -> bool:
        return address in self._allowed or address.kind in self._kinds

    def allow(self, address: Address) -> None:
        self._allowed.add(address)

    # -- sending ---------------------------------------------------------------------------------

    async def send(self, message: RoutedMessage) -> None:
        if self.closed.is_set():
            raise RoutingError(f"{self.name} is closed")
        if message.return_route:
            self.allow(message.return_route[0])  # replies may come back to the sender
        header = message.header()
        size = len(header) + len(message.payload)
        if size > limits.MAX_TRANSPORT_FRAME:
            raise RoutingError(f"message of {size} bytes over the frame limit")
        try:
            self.writer.writelines(
                (FRAME_HEADER.pack(FRAME_VERSION, size) + header, message.payload)
            )
            await self.writer.drain()
        except (ConnectionError, OSError) as exc:
            await self.close()
            raise RoutingError(f"{self.name}: {exc}") from None

    # -- receiving -------------------------------------------------------------------------------

    async def read_loop(self) -> None:
        router = self.transport.router
        try:
            while True:
                header = await self.reader.readexactly(FRAME_HEADER.size)
                length = check_header(header)
                async with asyncio.timeout(self.transport.frame_timeout):  # no task per frame
                    body = await self.reader.readexactly(length)
                self.frames_in += 1
                self.bytes_in += length
                message = RoutedMessage.decode(body).stepped_in(self.address)
                if self.on_frame is not None:
                    self.on_frame(message)
                try:
                    await router.route(message, self)
                except TrothError as exc:  # denied or undeliverable: drop this message only
                    log.info("%s: dropped a message: %s", self.name, exc)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except (DecodeError, TimeoutError) as exc:
            log.warning("%s: closing: %s", self.name, exc or type(exc).__name__)
        finally:
            await self.close()

    async def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        self.transport._forget(self)
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


@dataclass
class TcpTransport:
    router: Router
    connect_timeout: float = 5.0
    frame_timeout: float = 10.0
    kind: str = "tcp"
    _connections: dict[str, TcpConnection] = field(default_factory=dict)
    _all: set[TcpConnection] = field(default_factory=set)
    _listeners: list[Listener] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.router.add_transport(self)

    async def listen(self, host: str, port: int, listener: Listener) -> tuple[str, int]:
        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            host, port = writer.get_extra_info("peername")[:2]
            peer = f"{host}:{port}"
            self._start(
                TcpConnection(self, reader, writer, outgoing=False, listener=listener, peer=peer)
            )

        server = await asyncio.start_server(accepted, host, port)
        bound = server.sockets[0].getsockname()
        listener.server, listener.host, listener.port = server, bound[0], bound[1]
        self._listeners.append(listener)
        return bound[0], bound[1]

    async def connect(self, host: str, port: int) -> TcpConnection:
        key = f"{host}:{port}"
        existing = self._connections.get(key)
        if existing is not None and not existing.closed.is_set():
            return existing
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), self.connect_timeout
            )
        except TimeoutError:
            raise RoutingError(f"connecting to {key} timed out") from None
        except OSError as exc:
            raise RoutingError(f"cannot connect to {key}: {exc.strerror or exc}") from None
        connection = TcpConnection(self, reader, writer, outgoing=True, listener=None, peer=key)
        self._connections[key] = connection
        self._start(connection)
        return connection

    def _start(self, connection: TcpConnection) -> None:
        self._all.add(connection)
        self.router.register(connection.address, connection_worker(connection))
        task = asyncio.get_running_loop().create_task(connection.read_loop())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _forget(self, connection: TcpConnection) -> None:
        self._all.discard(connection)
        self.router.unregister(connection.address)
        if self._connections.get(connection.peer) is connection:
            del self._connections[connection.peer]

    def connection(self, address: Address) -> TcpConnection | None:
        return next((c for c in self._all if c.address == address), None)

    async def send(self, address: Address, message: RoutedMessage) -> None:
        host, port = address.host_port()
        connection = await self.connect(host, port)
        await connection.send(message)

    async def close(self) -> None:
        for listener in self._listeners:
            if listener.server is not None:
                listener.server.close()
        for connection in list(self._all):
            await connection.close()
        for task in list(self._tasks):
            task.cancel()
        for listener in self._listeners:
            if listener.server is not None:
                with contextlib.suppress(Exception):
                    await listener.server.wait_closed()
        self._listeners.clear()


def connection_worker(connection: TcpConnection) -> Handler:
    """The worker at a connection's address: whatever is routed to it goes out on the wire."""

    async def handle(message: RoutedMessage, source: Source | None) -> None:
        await connection.send(message)

    return handle
