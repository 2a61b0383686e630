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
  a new connection evicts one that brought no frame yet (of the source holding the most of
  those) or has been idle a while, else it is refused.
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
- Shutdown: `close()` closes listeners and connections and cancels their tasks; a closed
  connection whose peer does not take what was left within `write_timeout` is dropped.
"""

from __future__ import annotations

import asyncio
import collections
import collections.abc
import contextlib
import logging
import os
from dataclasses import dataclass, field

from troth import limits
from troth.errors import (
    ConfigError,
    Congested,
    DecodeError,
    RoutingError,
    TrothError,
    Unreachable,
)
from troth.routing import Address, Handler, RoutedMessage, Router, Source
from troth.transport.budget import STALL_PROGRESS, WriteBudget, unsent
from troth.transport.connection import Connection, ConnectionTable, Listener, source_network
from troth.transport.eager import start_eagerly
from troth.transport.eviction import eviction_candidate
from troth.transport.framing import FRAME_HEADER, FRAME_VERSION, FrameReader
from troth.transport.inbound import RoutingBudget, routing_cost
from troth.transport.liveness import Liveness
from troth.transport.ratelog import RateLimitedLog, install_accept_error_filter
from troth.transport.settings import QUEUED_FRAME_COST, TcpCounters, TcpSettings

__all__ = ["Listener", "TcpConnection", "TcpTransport"]

log = logging.getLogger("troth.transport.tcp")
CORK_LIMIT = 64 * 1024
"""The first frame sent in a loop iteration is written at once; the ones after it in the same
iteration are written together when it ends, or as soon as this many bytes wait (a large frame
is written at once, and backpressure sees it)."""


EAGER_LIMIT = 64 * 1024
"""The frames of a read are routed from the read callback while they total less than this;
a heavier read goes to the consumer task, so the next read can come in while it is routed
(a bulk stream's receiver keeps the sender's TCP window open instead of stalling it)."""


class TcpConnection(Connection, asyncio.BufferedProtocol):
    """One TCP connection: a protocol (bytes in), a worker (messages out), a Source."""

    def __init__(
        self, transport: TcpTransport, *, outgoing: bool, listener: Listener | None, peer: str
    ) -> None:
        settings = transport.settings
        super().__init__(
            kind="tcp",
            outgoing=outgoing,
            listener=listener,
            peer=peer,
            max_reply_paths=settings.max_reply_paths,
        )
        self.owner = transport
        self.closed = asyncio.Event()
        self.liveness = Liveness()
        """When it opened and last made progress (the sweep's idle clock, `Liveness`)."""
        self.network = ""
        """The network of its source (`source_network`), set as an accepted one is admitted."""

        self._reader = FrameReader(
            small=settings.small_read_buffer, large=settings.large_read_buffer
        )
        self._socket: asyncio.Transport | None = None
        self._time: collections.abc.Callable[[], float] = lambda: 0.0
        self._loop = asyncio.get_running_loop()
        self._frames: collections.deque[bytes] = collections.deque()
        self._wakeup = asyncio.Event()
        self._reading_paused = False
        self._writable = True  # False while the socket's write buffer is over its limit
        self._held_back = False  # not writable for the node-wide budget (`_wrote`)
        self._write_waiters: list[asyncio.Future[None]] = []  # senders waiting for the queue
        self._queue: collections.deque[bytes] = collections.deque()  # frames waiting for the
        # write buffer to drain (bounded: `_enqueue`)
        self._queued = 0  # their bytes
        self._stalled = False  # the peer took (next to) nothing in `stall_timeout`: its frames
        # are dropped until it drains
        self._unsent_at_check = 0  # bytes unsent at the last stall check
        self._stall_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._linger: asyncio.TimerHandle | None = None  # closed: what is left has
        # `write_timeout` to be written (review 26a, queue 3)
        self._why_closed = "closed"
        self._corked: list[bytes | bytearray | memoryview] = []  # frames not yet written
        self._corked_size = 0
        self._cork: asyncio.Handle | None = None  # set once a frame left in this iteration
        self._consumer: asyncio.Task[None] | None = None
        self._routing: asyncio.Task[None] | None = None  # a routing that waits: the frames
        # after it wait in `_frames` for the consumer
        self._draining = False  # the consumer routes a frame of `_frames` now

    @property
    def frames_read(self) -> int:
        """Complete frames received so far."""
        return self._reader.frames_read

    @property
    def read_buffer(self) -> int:
        """The read buffer's size now (given back by the sweep once the connection is quiet)."""
        return self._reader.capacity

    # -- protocol callbacks ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """asyncio: connected (admitted against the connection limits, or aborted)."""
        if not isinstance(transport, asyncio.Transport):
            raise TypeError("a TCP connection needs a stream transport")
        self._socket = transport
        loop = asyncio.get_running_loop()
        self._time = loop.time
        self.liveness.opened(loop.time())
        if not self.outgoing:
            peername = transport.get_extra_info("peername") or ("?", 0)
            self.set_peer(str(peername[0]), int(peername[1]))
        if not self.owner._admit(self):
            transport.abort()
            return
        transport.set_write_buffer_limits(high=self.owner.settings.write_buffer)
        self._consumer = loop.create_task(self._consume())

    def get_buffer(self, sizehint: int) -> memoryview:
        """asyncio: where to receive (the FrameReader's free space)."""
        return self._reader.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        """asyncio: `nbytes` arrived in the buffer: queue the frames they complete."""
        reader = self._reader
        try:
            frames = reader.advance(nbytes, self._time())
        except DecodeError:
            frames = []
        if reader.error is not None:  # the frames before a bad header are still routed
            self.owner.counters.closed_bad_frame += 1
            self.owner.warn("%s: closing: %s", self.name, reader.error)
            self._abort()
        if not frames:
            return
        queue = self._frames
        if (  # nothing waits, and a light read: route them now, in order
            not queue
            and self._routing is None
            and not self._draining
            and sum(map(len, frames)) < EAGER_LIMIT
        ):
            owner = self.owner
            reading: list[TcpConnection] = []
            outer, owner.reading = owner.reading, reading
            try:
                for at, body in enumerate(frames):
                    if self._route_now(body):
                        frames = frames[at + 1 :]
                        break
                else:
                    return
            finally:
                owner.reading = outer
                for connection in reading:
                    connection._write_corked()
        queue.extend(frames)
        inbound = self.owner.inbound
        inbound.charge(self.host, routing_cost(frames), self.outgoing)
        self._wakeup.set()
        full = len(queue) >= self.owner.settings.max_queued_frames  # (the budget: only while
        # it holds frames, whose routing resumes it)
        if (full or (queue and inbound.over(self.host, self.outgoing))) and self._socket:
            self._socket.pause_reading()
            self._reading_paused = True

    def eof_received(self) -> bool:
        """asyncio: the peer closed its side: close ours."""
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """asyncio: the connection is gone."""
        self._socket = None
        self._release()
        self._wakeup.set()
        self.closed.set()
        self.owner._forget(self)

    def pause_writing(self) -> None:
        """asyncio: the socket's write buffer is over the limit: frames queue from now on; the
        peer is dropped unless it drains within `write_timeout`, and stalls when it takes
        less than `write_buffer / STALL_PROGRESS` in a `stall_timeout`."""
        self._writable = False
        settings, loop = self.owner.settings, self._loop
        self._stop_timers()
        self._write_timer = loop.call_later(settings.write_timeout, self._not_reading)
        self._unsent_at_check = self._unsent()
        self._stall_timer = loop.call_later(settings.stall_timeout, self._check_stall)

    def resume_writing(self) -> None:
        """asyncio: the socket's write buffer drained (to a quarter of its limit): the queue
        goes on into it, and a stalled peer reads again."""
        self._stop_timers()
        socket, queue = self._socket, self._queue
        if self._held_back and socket is not None:  # held by the budget: its own limit again
            self._held_back = False
            socket.set_write_buffer_limits(high=self.owner.settings.write_buffer)
        self.owner.budget.count(self)
        self._writable = True
        self._stalled = False
        while queue and self._writable and socket is not None:  # pause_writing may stop it
            frame = queue.popleft()
            self._dequeued(len(frame) + QUEUED_FRAME_COST)
            socket.write(frame)
            self._wrote()
        self._wake()

    def _unsent(self) -> int:
        """Bytes sent to the peer that it has not taken yet (`budget.unsent`)."""
        return unsent(self._socket)

    def buffered(self) -> int:
        """The bytes the event loop's write buffer holds now (what the budget counts)."""
        socket = self._socket
        return 0 if socket is None else socket.get_write_buffer_size()

    def _wrote(self) -> None:
        """After a write: the node-wide budget counts this buffer; past the budget
        (`write_buffer_total`), a connection left holding unsent bytes is held back as if its
        buffer were full (review 48q, write budget 1): its frames queue (within the queues'
        bounds) and its timers run, as past `write_buffer`, until it drains."""
        budget, socket = self.owner.budget, self._socket
        if budget.count(self) and self._writable and socket and budget.over(self._time()):
            self.owner.counters.held_back += 1
            self._held_back = True
            socket.set_write_buffer_limits(high=0)  # pause_writing now; resumed once empty

    def _check_stall(self) -> None:
        """The stall timer: the peer took at least a sixteenth of `write_buffer` of what was
        sent since the last check (checked again later), or less: stalled (a peer that stopped
        reading still lets a little through: the segments in flight when its receive buffer
        filled, and what its kernel frees when it compacts that buffer)."""
        self._stall_timer = None
        if self._writable or self._socket is None:
            return
        unsent, settings = self._unsent(), self.owner.settings
        if unsent <= self._unsent_at_check - settings.write_buffer // STALL_PROGRESS:
            self._unsent_at_check = unsent
            self._stall_timer = self._loop.call_later(settings.stall_timeout, self._check_stall)
            return
        self._stalled = True
        counters = self.owner.counters
        counters.stalled += 1
        counters.dropped_stalled += len(self._queue)
        self.owner.warn("%s: peer stalled: %d queued frames dropped", self.name, len(self._queue))
        self._drop_queue()

    def _not_reading(self) -> None:
        """The write timer: the peer did not drain its write buffer in `write_timeout`."""
        self._write_timer = None
        timeout = self.owner.settings.write_timeout
        self.owner.counters.closed_not_reading += 1
        self.owner.warn("%s: peer not reading for %s s: dropped", self.name, timeout)
        self._why_closed = "not reading"
        self._abort()

    def _linger_over(self) -> None:
        """The close timer: the peer did not take what was left for it in `write_timeout`
        (`resume_writing` stops the write timer, and a closed connection writes nothing more
        to start it again: its socket, outside the caps and the sweep, stayed for good)."""
        self._linger = None
        self.owner.counters.closed_not_reading += 1
        timeout = self.owner.settings.write_timeout
        self.owner.warn("%s: closed, what was left not taken in %s s: dropped", self.name, timeout)
        self._abort()

    def _stop_timers(self) -> None:
        for timer in (self._stall_timer, self._write_timer):
            if timer is not None:
                timer.cancel()
        self._stall_timer = self._write_timer = None

    def _dequeued(self, size: int) -> None:
        self._queued -= size
        self.owner.charge_queue(self.host, -size)

    def _drop_queue(self) -> None:
        """Give up the frames queued (stalled or closed); wake the senders waiting."""
        self.owner.charge_queue(self.host, -self._queued)
        self._queued = 0
        self._queue.clear()
        self._wake()

    def _release(self) -> None:
        """The connection closed: its queue and timers go, its senders wake (and fail)."""
        self._stop_timers()
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        self._writable = True
        self._held_back = False
        self.owner.budget.forget(self)
        self._drop_queue()

    def _wake(self) -> None:
        """Room in this queue (or a reason to give up): wake its senders, and, when all queues
        together hold less, those waiting for that."""
        waiters, self._write_waiters = self._write_waiters, []
        if self.owner.queued_bytes < self.owner.settings.max_queued_total:
            waiters += self.owner.space_waiters
            self.owner.space_waiters = []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- routing what arrives ----------------------------------------------------------------

    def _message(self, body: bytes) -> RoutedMessage | None:
        """The routed message a frame carries (None: malformed, dropped and counted)."""
        try:  # the framing held: a bad message is dropped, the connection stays
            message = self.arrived(body)
        except TrothError as exc:
            self.owner.counters.dropped_messages += 1
            self.owner.note("%s: dropped a malformed message: %s", self.name, exc)
            return None
        for observe in self.owner.observers:
            observe(self, message)
        return message

    def _route_now(self, body: bytes) -> bool:
        """Route a frame from the read callback; True when its routing waits (it goes on in
        `_routing`, which the frames after it wait for)."""
        message = self._message(body)
        if message is None:
            return False
        try:
            self._routing = start_eagerly(self.owner.router.route(message, self), self._loop)
        except Exception as exc:  # as in `_consume`: one message dropped
            self._dropped(exc)
            return False
        if self._routing is None:
            return False
        self._wakeup.set()  # the consumer waits for it, then routes what queued behind it
        return True

    def _dropped(self, exc: BaseException) -> None:
        """A message's routing failed: denied or undeliverable (TrothError), or a bug (logged);
        only that message is dropped, the connection stays."""
        if isinstance(exc, TrothError):
            self.owner.counters.dropped_messages += 1
            self.owner.note("%s: dropped a message: %s", self.name, exc)
        else:
            log.error("%s: a message failed", self.name, exc_info=exc)

    async def _consume(self) -> None:
        try:
            await self._route_queued()
        finally:
            self._give_up_frames()

    def _give_up_frames(self) -> None:
        """Stopped (the consumer, or the connection closed): the frames waiting to be routed
        are given up, and so are their bytes in the budget (review 53n, queues 1)."""
        self.owner.inbound.charge(self.host, -routing_cost(self._frames), self.outgoing)
        self._frames.clear()

    async def _route_queued(self) -> None:
        router, inbound = self.owner.router, self.owner.inbound
        frames = self._frames
        resume_below = self.owner.settings.max_queued_frames // 2
        while True:
            if self._routing is not None:  # a routing started by the read callback waits
                try:
                    await self._routing
                except asyncio.CancelledError:
                    consumer = asyncio.current_task()
                    if self.closed.is_set() or (consumer is not None and consumer.cancelling()):
                        raise  # this task is stopped (not only the routing it waited for)
                except Exception as exc:  # dropped, as below
                    self._dropped(exc)
                self._routing = None
                continue
            if not frames:
                if self.closed.is_set():
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            body = frames.popleft()
            inbound.charge(self.host, -routing_cost((body,)), self.outgoing)
            over = frames and inbound.over(self.host, self.outgoing)
            if self._reading_paused and len(frames) < resume_below and not over and self._socket:
                self._socket.resume_reading()
                self._reading_paused = False
            message = self._message(body)
            if message is None:
                continue
            self._draining = True
            try:
                await router.route(message, self)
            except Exception as exc:  # one message dropped, the connection stays
                self._dropped(exc)
            finally:
                self._draining = False

    def _check(self, now: float) -> None:
        """The sweep: close this connection when it stalls or idles past its timeouts
        (`Liveness.overdue`; progress is any frame either way, or at a node only what
        `progressed` counts: review 50e, idle 1)."""
        owner, reader = self.owner, self._reader
        progress = (
            self.progress if owner.authenticated_idle else reader.frames_read + self.frames_sent
        )
        reader.settle()  # little or nothing came in since the last sweep: buffer given back
        why = self.liveness.overdue(now, progress, reader, self._reading_paused, owner)
        if why is not None:
            owner.warn("%s: closing: %s", self.name, why)
            self._abort()

    # -- sending ---------------------------------------------------------------------------------

    async def send(self, message: RoutedMessage) -> None:
        """Write one message as a frame; queued while the write buffer is full (waits while
        the queue is too, and the peer reads; Congested once it stalled)."""
        socket = self._socket
        if socket is None or self.closed.is_set():
            raise Unreachable(f"{self.name} is {self._why_closed}")
        if message.return_route:
            self.allowed.allow(message.return_route[0])  # replies may come back to the sender
        header = message.header()
        size = len(header) + len(message.payload)
        if size > limits.MAX_TRANSPORT_FRAME:
            raise RoutingError(f"message of {size} bytes over the frame limit")
        head = FRAME_HEADER.pack(FRAME_VERSION, size) + header
        if self._stalled:
            self._stalled_drop()
        if self._queue or not self._writable:
            await self._enqueue(b"".join((head, message.payload)))
            return
        reading = self.owner.reading
        if reading is None and self._cork is None:  # the first frame of this loop iteration
            # (no read callback routing): written at once
            self._cork = self._loop.call_soon(self._uncork)
            socket.write(b"".join((head, message.payload)))
            self._wrote()
        else:  # written when the read callback that routes returns, or with the others of
            # this iteration when it ends
            if reading is not None and not self._corked:
                reading.append(self)
            self._corked += (head, message.payload)
            self._corked_size += size + FRAME_HEADER.size
            if self._corked_size >= CORK_LIMIT:
                self._write_corked()
        self.frames_sent += 1

    async def _enqueue(self, frame: bytes) -> None:
        """Queue a frame for the write buffer, at once while this queue and all of them hold
        less than their bounds (each frame counted with `QUEUED_FRAME_COST`, what holding it
        costs beyond its bytes); else wait for room while the peer reads (a future, not
        `asyncio.timeout`: a read callback's routing has no task). The timers end the wait:
        a peer that stalls has its frame dropped (Congested), one not reading is closed."""
        owner, size = self.owner, len(frame) + QUEUED_FRAME_COST
        settings = owner.settings
        self._write_corked()  # what was sent before goes first
        while True:
            if self._socket is None or self.closed.is_set():
                raise Unreachable(f"{self.name} is {self._why_closed}")
            if self._stalled:
                self._stalled_drop()
            if not self._queue and self._writable:  # drained meanwhile
                self._socket.write(frame)
                self._wrote()
                break
            room = (
                self._queued + size <= settings.max_queued_bytes
                and owner.queued_from(self.host) + size <= settings.queued_per_source
            )
            if room and owner.queued_bytes + size <= settings.max_queued_total:
                self._queue.append(frame)
                self._queued += size
                owner.charge_queue(self.host, size)
                break
            waiter = self._loop.create_future()
            self._write_waiters.append(waiter)
            if room:  # all the queues together are full: any of them draining will do
                owner.space_waiters.append(waiter)
            try:
                await waiter
            finally:
                for waiting in (self._write_waiters, owner.space_waiters):
                    with contextlib.suppress(ValueError):
                        waiting.remove(waiter)
        self.frames_sent += 1

    def _stalled_drop(self) -> None:
        """A frame for a stalled peer: dropped (counted), the sender told (Congested)."""
        self.owner.counters.dropped_stalled += 1
        raise Congested(f"{self.name} is not reading: a frame for it was dropped")

    def _uncork(self) -> None:
        """The loop iteration is over: write what it corked; the next frame leaves at once."""
        self._cork = None
        self._write_corked()

    def _write_corked(self) -> None:
        """Write the corked frames in one piece (one system call for the answers to many
        callers, where a write per frame would cost one each)."""
        corked = self._corked
        if not corked:
            return
        self._corked = []
        self._corked_size = 0
        if self._socket is not None:
            data = b"".join(corked)
            if not self._writable:  # the stall check counts what the peer takes from here
                self._unsent_at_check += len(data)
            self._socket.write(data)
            self._wrote()

    def _abort(self) -> None:
        if self._socket is not None:
            self._socket.abort()

    async def close(self) -> None:
        """Close the connection (what was sent is still written) and stop routing what it
        brought."""
        if self._socket is not None:
            self._write_corked()
            for frame in self._queue:  # sent: written before the connection closes
                self._socket.write(frame)
            self._drop_queue()  # (in the socket's buffer now: written within the write
            # timeout, or the connection is dropped)
            self.owner.budget.count(self)  # (until it is lost)
            self._socket.close()
            if self._linger is None:
                timeout = self.owner.settings.write_timeout
                self._linger = self._loop.call_later(timeout, self._linger_over)
        self.closed.set()
        self._wakeup.set()
        self.owner._forget(self)
        if self._routing is not None and self._routing is not asyncio.current_task():
            self._routing.cancel()
        if self._consumer is not None and self._consumer is not asyncio.current_task():
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._consumer
            self._give_up_frames()  # (a consumer cancelled before it started ran no finally)


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
    _all: set[TcpConnection] = field(default_factory=set)
    _accepted: dict[TcpConnection, None] = field(default_factory=dict)  # oldest first
    _per_host: collections.Counter[str] = field(default_factory=collections.Counter)
    _per_network: collections.Counter[str] = field(default_factory=collections.Counter)
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
    budget: WriteBudget = field(init=False)
    """The write buffers of all connections together (`settings.write_buffer_total`)."""
    inbound: RoutingBudget = field(init=False)
    """The frames read that wait to be routed (`settings.max_routing_total`)."""

    def __post_init__(self) -> None:
        self.router.add_transport(self)
        self.budget = WriteBudget(self.settings.write_buffer_total)
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
        """The open connection to host:port, or a new one."""
        key = f"{host}:{port}"
        existing = self._connections.get(key)
        if existing is not None and not existing.closed.is_set():
            return existing
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
        self._connections[key] = connection
        return connection

    def _admit(self, connection: TcpConnection) -> bool:
        """A new connection against the limits (outgoing ones are this node's own)."""
        if not connection.outgoing:
            settings, counters = self.settings, self.counters
            connection.network = source_network(connection.host)
            if self._per_host[connection.host] >= settings.max_connections_per_source:
                counters.refused_per_source += 1
                self.warn(
                    "%s: refused: too many connections from %s", connection.name, connection.host
                )
                return False
            if len(self._accepted) >= settings.max_connections:
                victim = eviction_candidate(
                    self._accepted,
                    connection,
                    self._per_host,
                    self._per_network,
                    strict=self.authenticated_idle,  # at a node: progress (review 50e, idle 2)
                    evict_idle_after=settings.evict_idle_after,
                )
                if victim is None:
                    counters.refused_over_limit += 1
                    self.warn("%s: refused: at %d connections", connection.name, len(self._all))
                    return False
                counters.evicted += 1
                self.warn("%s: evicted for a new connection", victim.name)
                victim._abort()
                self._forget(victim)
            counters.accepted += 1
            self._accepted[connection] = None
            self._per_host[connection.host] += 1
            self._per_network[connection.network] += 1
        self._all.add(connection)
        self.router.register(connection.address, connection_worker(connection))
        if self._sweeper is None:
            self._sweep()
        return True

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for connection in list(self._all):
            connection._check(now)
        self._sweeper = loop.call_later(self.settings.sweep_interval, self._sweep)

    def _forget(self, connection: TcpConnection) -> None:
        if connection not in self._all:
            return
        self._all.discard(connection)
        if connection in self._accepted:
            del self._accepted[connection]
            for counts, key in (
                (self._per_host, connection.host),
                (self._per_network, connection.network),
            ):
                counts[key] -= 1
                if not counts[key]:
                    del counts[key]
        self._drop(connection)

    async def close(self) -> None:
        """Close listeners and connections; stop the sweep."""
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
