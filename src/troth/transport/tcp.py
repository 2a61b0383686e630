"""The TCP transport (asyncio): connect and listen; every connection is a router worker
(`/worker/tcp-...`) and a message Source with its own allow-set.

Reading uses `asyncio.BufferedProtocol`: the kernel writes into one preallocated buffer
(recv_into), frames are cut out of it with a single copy, and a consumer task routes them in
order. (A StreamReader would copy every byte twice more and memmove its buffer per read.)

- Timeouts: connecting gives up after `connect_timeout`; a frame that has started must finish
  within `frame_timeout`, else the connection is dropped (a peer that stalls mid-frame).
- Backpressure: reading pauses while `MAX_QUEUED_FRAMES` frames wait to be routed, and the
  consumer awaits each routing, so a slow consumer slows its producers; `send` waits while
  more than `WRITE_BUFFER` bytes are queued for the socket. Nothing buffers without bound.
- Shutdown: `close()` closes listeners and connections and cancels their tasks.
"""

from __future__ import annotations

import asyncio
import collections
import collections.abc
import contextlib
import logging
import time
from dataclasses import dataclass, field

from troth import limits
from troth.errors import DecodeError, RoutingError, TrothError
from troth.routing import Address, Handler, RoutedMessage, Router, Source, new_worker_address
from troth.transport.framing import FRAME_HEADER, FRAME_VERSION, check_header

__all__ = ["Listener", "TcpConnection", "TcpTransport"]

log = logging.getLogger("troth.transport.tcp")
WRITE_BUFFER = 1 << 20  # bytes queued for the socket before senders wait
READ_BUFFER = 4 * limits.MAX_TRANSPORT_FRAME  # the receive buffer once traffic is heavy
FIRST_READ_BUFFER = 16 * 1024  # a new connection's buffer (zeroing 512 KiB per connection
# would cost more than a whole handshake): it grows to READ_BUFFER with the first big frame
MAX_QUEUED_FRAMES = 64  # frames read but not yet routed before reading pauses
WRITE_TIMEOUT = 10.0  # seconds a send may wait for a slow peer before its connection is dropped
MAX_REPLY_PATHS = 4096  # reply paths a connection remembers (oldest forgotten first)


@dataclass
class Listener:
    """What a listening socket's connections may reach by default."""

    addresses: frozenset[Address] = frozenset()
    kinds: frozenset[str] = frozenset()  # every address of these kinds (e.g. "relay")
    server: asyncio.Server | None = None


class TcpConnection(asyncio.BufferedProtocol):
    """One TCP connection: a protocol (bytes in), a worker (messages out), a Source."""

    def __init__(
        self, transport: TcpTransport, *, outgoing: bool, listener: Listener | None, peer: str
    ) -> None:
        self.owner = transport
        self.outgoing = outgoing
        self.peer = peer
        self.address = new_worker_address("tcp")
        self.name = f"tcp {peer} ({'out' if outgoing else 'in'})"
        self._kinds = listener.kinds if listener else frozenset()
        self._allowed: set[Address] = set(listener.addresses) if listener else set()
        self._replies: dict[Address, None] = {}  # reply paths and channel ends: bounded, ordered
        self.closed = asyncio.Event()

        self._socket: asyncio.Transport | None = None
        self._buffer = bytearray(FIRST_READ_BUFFER)
        self._start = 0  # first unread byte
        self._end = 0  # one past the last byte received
        self._partial_since: float | None = None
        self._frames: collections.deque[bytes] = collections.deque()
        self._wakeup = asyncio.Event()
        self._reading_paused = False
        self._writable = asyncio.Event()
        self._writable.set()
        self._consumer: asyncio.Task[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    # -- Source ----------------------------------------------------------------------------------

    def allows(self, address: Address) -> bool:
        return address in self._allowed or address in self._replies or address.kind in self._kinds

    def allow(self, address: Address) -> None:
        replies = self._replies
        if address in replies or address in self._allowed:
            return
        if len(replies) >= MAX_REPLY_PATHS:
            del replies[next(iter(replies))]
        replies[address] = None

    def forget(self, address: Address) -> None:
        self._replies.pop(address, None)

    # -- protocol callbacks ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not isinstance(transport, asyncio.Transport):
            raise TypeError("a TCP connection needs a stream transport")
        self._socket = transport
        if not self.outgoing:
            peername = transport.get_extra_info("peername") or ("?", 0)
            self.peer = f"{peername[0]}:{peername[1]}"
            self.name = f"tcp {self.peer} (in)"
        transport.set_write_buffer_limits(high=WRITE_BUFFER)
        self._consumer = asyncio.get_running_loop().create_task(self._consume())
        self._arm_watchdog()

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._end == len(self._buffer):  # full: the unread part to the front (traffic is
            self._move_unread(max(len(self._buffer), READ_BUFFER))  # heavy: grown once)
        return memoryview(self._buffer)[self._end :]

    def _move_unread(self, size: int) -> None:
        """Move the unread bytes to the front of the buffer, into a new one of `size` bytes
        when that is larger (the old buffer is never resized: views of it may be alive)."""
        unread = self._end - self._start
        source = memoryview(self._buffer)[self._start : self._end]
        if size > len(self._buffer):
            grown = bytearray(size)
            grown[:unread] = source
            self._buffer = grown
        else:
            memoryview(self._buffer)[:unread] = source  # overlapping: memoryview copies safely
        self._start, self._end = 0, unread

    def buffer_updated(self, nbytes: int) -> None:
        self._end += nbytes
        buffer = self._buffer
        view = memoryview(buffer)
        before = len(self._frames)
        try:
            while self._end - self._start >= FRAME_HEADER.size:
                version, length = FRAME_HEADER.unpack_from(buffer, self._start)
                if version != FRAME_VERSION or length > limits.MAX_TRANSPORT_FRAME:
                    check_header(bytes(buffer[self._start : self._start + FRAME_HEADER.size]))
                begin = self._start + FRAME_HEADER.size
                if self._end - begin < length:
                    if begin + length > len(buffer):  # make room for the rest of this frame
                        need = FRAME_HEADER.size + length
                        self._move_unread(need if need <= len(buffer) else max(READ_BUFFER, need))
                    break
                self._frames.append(bytes(view[begin : begin + length]))  # the one copy
                self._start = begin + length
        except DecodeError as exc:
            log.warning("%s: closing: %s", self.name, exc)
            self._abort()
            return
        if self._start == self._end:
            self._start = self._end = 0
            self._partial_since = None
        elif self._partial_since is None or before != len(self._frames):
            self._partial_since = time.monotonic()  # a new frame started (the stall clock)
        if self._frames:
            self._wakeup.set()
            if len(self._frames) >= MAX_QUEUED_FRAMES and self._socket is not None:
                self._socket.pause_reading()
                self._reading_paused = True

    def eof_received(self) -> bool:
        return False  # close

    def connection_lost(self, exc: Exception | None) -> None:
        self._socket = None
        self._writable.set()
        self._wakeup.set()
        self.closed.set()
        self.owner._forget(self)
        if self._watchdog is not None:
            self._watchdog.cancel()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- routing what arrives ----------------------------------------------------------------

    async def _consume(self) -> None:
        router = self.owner.router
        frames = self._frames
        while True:
            if not frames:
                if self.closed.is_set():
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            body = frames.popleft()
            if self._reading_paused and len(frames) < MAX_QUEUED_FRAMES // 2 and self._socket:
                self._socket.resume_reading()
                self._reading_paused = False
            try:  # the framing held: a bad message is dropped, the connection stays
                message = RoutedMessage.decode(body).stepped_in(self.address)
            except TrothError as exc:
                log.info("%s: dropped a malformed message: %s", self.name, exc)
                continue
            for observe in self.owner.observers:
                observe(self, message)
            try:
                await router.route(message, self)
            except TrothError as exc:  # denied or undeliverable: drop this message only
                log.info("%s: dropped a message: %s", self.name, exc)
            except Exception:  # a bug must not stop this connection: log it, drop the message
                log.exception("%s: a message failed", self.name)

    def _arm_watchdog(self) -> None:
        timeout = self.owner.frame_timeout
        self._watchdog = asyncio.get_running_loop().call_later(timeout / 2, self._check_stall)

    def _check_stall(self) -> None:
        since = self._partial_since
        if since is not None and time.monotonic() - since > self.owner.frame_timeout:
            log.warning(
                "%s: closing: a frame stalled for %s s", self.name, self.owner.frame_timeout
            )
            self._abort()
            return
        if not self.closed.is_set():
            self._arm_watchdog()

    # -- sending ---------------------------------------------------------------------------------

    async def send(self, message: RoutedMessage) -> None:
        socket = self._socket
        if socket is None or self.closed.is_set():
            raise RoutingError(f"{self.name} is closed")
        if message.return_route:
            self.allow(message.return_route[0])  # replies may come back to the sender
        header = message.header()
        size = len(header) + len(message.payload)
        if size > limits.MAX_TRANSPORT_FRAME:
            raise RoutingError(f"message of {size} bytes over the frame limit")
        prefix = FRAME_HEADER.pack(FRAME_VERSION, size) + header
        if socket.get_write_buffer_size():  # queued anyway: each write appends (one copy)
            socket.write(prefix)
            socket.write(message.payload)
        else:  # written now: one send() for the frame is worth one join
            socket.write(b"".join((prefix, message.payload)))
        if not self._writable.is_set():
            try:
                async with asyncio.timeout(WRITE_TIMEOUT):
                    await self._writable.wait()
            except TimeoutError:
                log.warning("%s: peer not reading for %s s: dropped", self.name, WRITE_TIMEOUT)
                self._abort()
                raise RoutingError(f"{self.name} is not reading") from None
            if self._socket is None:
                raise RoutingError(f"{self.name} closed while sending")

    def _abort(self) -> None:
        if self._socket is not None:
            self._socket.abort()

    async def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
        self.closed.set()
        self._wakeup.set()
        self.owner._forget(self)
        if self._consumer is not None and self._consumer is not asyncio.current_task():
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._consumer


@dataclass
class TcpTransport:
    router: Router
    connect_timeout: float = 5.0
    frame_timeout: float = 10.0
    kind: str = "tcp"
    _connections: dict[str, TcpConnection] = field(default_factory=dict)
    _all: set[TcpConnection] = field(default_factory=set)
    _listeners: list[Listener] = field(default_factory=list)
    observers: list[collections.abc.Callable[[TcpConnection, RoutedMessage], None]] = field(
        default_factory=list
    )
    """Called with every message that arrives (what a relay sees: tests and the demo)."""

    def __post_init__(self) -> None:
        self.router.add_transport(self)

    async def listen(self, host: str, port: int, listener: Listener) -> tuple[str, int]:
        loop = asyncio.get_running_loop()

        def accepted() -> TcpConnection:
            connection = TcpConnection(self, outgoing=False, listener=listener, peer="?")
            self._started(connection)
            return connection

        server = await loop.create_server(accepted, host, port)
        bound = server.sockets[0].getsockname()
        listener.server = server
        self._listeners.append(listener)
        return bound[0], bound[1]

    async def connect(self, host: str, port: int) -> TcpConnection:
        key = f"{host}:{port}"
        existing = self._connections.get(key)
        if existing is not None and not existing.closed.is_set():
            return existing
        loop = asyncio.get_running_loop()
        connection = TcpConnection(self, outgoing=True, listener=None, peer=key)
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: connection, host, port), self.connect_timeout
            )
        except TimeoutError:
            raise RoutingError(f"connecting to {key} timed out") from None
        except OSError as exc:
            raise RoutingError(f"cannot connect to {key}: {exc.strerror or exc}") from None
        self._connections[key] = connection
        self._started(connection)
        return connection

    def _started(self, connection: TcpConnection) -> None:
        self._all.add(connection)
        self.router.register(connection.address, connection_worker(connection))

    def _forget(self, connection: TcpConnection) -> None:
        self._all.discard(connection)
        self.router.unregister(connection.address)
        if self._connections.get(connection.peer) is connection:
            del self._connections[connection.peer]

    def connection(self, address: Address) -> TcpConnection | None:
        return next((c for c in self._all if c.address == address), None)

    def connections(self) -> list[TcpConnection]:
        return list(self._all)

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
