"""One TCP connection of the TCP transport (troth.transport.tcp, whose docstring gives the
design and the limits; docs/protocols.md, "TCP transport"): the protocol reading frames into
its `FrameReader`, routing them in order, and writing, queueing and corking what is sent."""

from __future__ import annotations

import asyncio
import collections
import collections.abc
import contextlib
import logging
import sys
from typing import TYPE_CHECKING, Final

from troth import limits
from troth.errors import (
    Congested,
    DecodeError,
    RoutingError,
    TrothError,
    Unreachable,
)
from troth.routing import RoutedMessage
from troth.routing.message import Buffer
from troth.transport.budget import STALL_PROGRESS, unsent
from troth.transport.connection import Connection, Listener, peer_host
from troth.transport.eager import start_eagerly
from troth.transport.framing import FRAME_HEADER, FRAME_VERSION, FrameReader
from troth.transport.inbound import routing_cost
from troth.transport.liveness import Liveness
from troth.transport.settings import QUEUED_FRAME_COST

if TYPE_CHECKING:
    from troth.transport.tcp import TcpTransport

__all__ = [
    "CORK_LIMIT",
    "CUT_BATCH",
    "EAGER_LIMIT",
    "ROUTE_BATCH",
    "SPLIT_FRAME_COST",
    "SPLIT_FROM",
    "TcpConnection",
    "write_copies",
]

log = logging.getLogger("troth.transport.tcp")
CORK_LIMIT = 64 * 1024
"""The first frame sent in a loop iteration is written at once; the ones after it in the same
iteration are written together when it ends, or as soon as this many bytes wait (a large frame
is written at once, and backpressure sees it)."""


EAGER_LIMIT = 64 * 1024
"""The frames of a read are routed from the read callback while they cost less than this
(`routing_cost`: their bytes and `QUEUED_FRAME_COST` each, so at most 1,024 of them; review
57c, transport 2: their bodies alone were counted, and one read of ~100,000 empty frames was
routed in the callback, the event loop held for all of them); a heavier read goes to the
consumer task, so the next read can come in while it is routed (a bulk stream's receiver keeps
the sender's TCP window open instead of stalling it)."""

ROUTE_BATCH = 64
"""The consumer lets the event loop run after routing this many frames in a row (a routing
that does not wait never yields: review 57c, transport 2, where one read's ~17,000 tiny
frames were routed in one turn of the loop while every other connection's waited)."""

CUT_BATCH = 1024
"""The most frames cut out of a read in one turn of the event loop: the rest wait in the read
buffer, the connection reading nothing more, and are cut a batch a turn (review 57c, transport
2: a 512 KiB read of empty frames, ~100,000 of them, was cut in one callback)."""


SPLIT_FROM = 16 * 1024
"""A frame queued while the write buffer is full whose payload is at least this large is held
as its header and its payload apart, not joined: the join copied every payload byte once more
before the write copied them into the event loop's buffer (review 72m, bulk 1). A smaller one
is joined (one object, what `QUEUED_FRAME_COST` counts)."""

SPLIT_FRAME_COST = 512
"""What a frame held apart costs beyond its header and the whole object its payload is a view
of (both counted: a relayed payload keeps the frame it came in alive): the tuple holding them,
the header's bytes object and the payload's view (~300 bytes on 64-bit CPython)."""


def write_copies(transport: asyncio.BaseTransport) -> bool:
    """Whether `transport`'s write copies the bytes written into its write buffer (CPython
    3.11's selector transport: one bytearray) rather than keeping the objects written (3.12's:
    a deque of them, sent with sendmsg; uvloop's on every version, until libuv sent them). A
    payload written apart from its header (`_write_frame`) is kept as it is by the latter: a
    view kept the whole object it views alive, counted as its length (review 73d, forks 2: a
    relayed 100-byte message kept the 60 KiB frame it came in, `write_buffer` holding hundreds
    of MiB for a slow reader), and a bytearray changed after the write was sent as changed. So
    one that is not `bytes` is joined to its header there (one copy, as 3.11's write made).
    Asked of the transport, not the Python version (review 73j, forks2 2: 73d's flag, 3.12 and
    later, missed uvloop's on 3.11): only a bytearray write buffer is known to copy."""
    return type(getattr(transport, "_buffer", None)) is bytearray


_LARGEST_FRAME_COST: Final = limits.MAX_TRANSPORT_FRAME + FRAME_HEADER.size + QUEUED_FRAME_COST
"""What the largest joined frame costs: a frame held apart is never charged more (it is joined
instead), so one always fits an empty queue, as the settings check (TcpSettings)."""

_Queued = bytes | tuple[bytes, Buffer, int]
"""A queued frame: joined, or its header, its payload and its charge (`_queued_frame`)."""


def _queued_frame(head: bytes, payload: Buffer) -> tuple[_Queued, int]:
    """A frame to queue (header and payload, `SPLIT_FROM`), and what it is charged: the object
    its payload views as allocated (review 72w, transport 1: a channel's large decrypted frame
    keeps `IN_PLACE_ROOM` allocated past its length, and was charged its length)."""
    base = payload.obj if type(payload) is memoryview else payload
    if len(payload) >= SPLIT_FROM and base is not None:  # (a view of no object: joined)
        held = max(memoryview(base).nbytes, sys.getsizeof(base))  # (a bytearray's room too)
        charge = len(head) + held + QUEUED_FRAME_COST + SPLIT_FRAME_COST
        if charge <= _LARGEST_FRAME_COST:
            return (head, payload, charge), charge
    frame = b"".join((head, payload))
    return frame, len(frame) + QUEUED_FRAME_COST


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

        self._reader = FrameReader(
            small=settings.small_read_buffer, large=settings.large_read_buffer, max_cut=CUT_BATCH
        )
        self._socket: asyncio.Transport | None = None
        self._time: collections.abc.Callable[[], float] = lambda: 0.0
        self._loop = asyncio.get_running_loop()
        self._frames: collections.deque[bytes] = collections.deque()
        self._wakeup = asyncio.Event()
        self._reading_paused = False
        self._cutting = False  # frames wait in the read buffer (`CUT_BATCH`): read no more
        self._stopped = False  # the frames brought are given up (`_give_up_frames`)
        self._held = False  # its source passed its share of the routing budget (`hold_reading`)
        self._writable = True  # False while the socket's write buffer is over its limit
        self._held_back = False  # not writable for the node-wide budget (`_wrote`)
        self._write_waiters: list[asyncio.Future[None]] = []  # senders waiting for the queue
        self._queue: collections.deque[_Queued] = collections.deque()  # frames waiting for the
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
        self._write_copies = True  # the transport's write copies what it is given (`write_copies`)
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

    def _proved(self) -> None:
        self.owner.proved(self)

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
        self._write_copies = write_copies(transport)
        loop = asyncio.get_running_loop()
        self._time = loop.time
        self.liveness.opened(loop.time())
        if not self.outgoing:
            peername = transport.get_extra_info("peername") or ("?", 0)
            self.set_peer(peer_host(peername), int(peername[1]))  # (with its zone: 68b, 1)
        if not self.owner._admit(self):
            transport.abort()
            return
        transport.set_write_buffer_limits(high=self.owner.settings.write_buffer)
        self._consumer = loop.create_task(self._consume())

    def get_buffer(self, sizehint: int) -> memoryview:
        """asyncio: where to receive (the FrameReader's free space; an accepted connection's
        at most `READ_PAST_ROUTING_TOTAL` bytes of it while the frames waiting to be routed
        pass the node's total, so one that reads then holds at most that past it, and the frame
        it completed: review 55a, budget 2)."""
        space = self._reader.get_buffer()
        inbound = self.owner.inbound
        if inbound.held > inbound.total and not self.outgoing:
            return space[: limits.READ_PAST_ROUTING_TOTAL]
        return space

    def buffer_updated(self, nbytes: int) -> None:
        """asyncio: `nbytes` arrived in the buffer: queue the frames they complete (at most
        `CUT_BATCH` now, the rest a batch a turn, reading nothing more meanwhile)."""
        self._take(nbytes)
        self._cut_later()

    def _cut_later(self) -> None:
        """Frames left in the read buffer (`CUT_BATCH`): reading pauses, and they are cut in
        the next turn of the loop (review 57c, transport 2)."""
        if self._cutting or self._stopped or not self._reader.has_frame():
            return
        self._cutting = True
        if self._socket is not None and not self._reading_paused:
            self._socket.pause_reading()
            self._reading_paused = True
        self._loop.call_soon(self._cut_more)

    def _cut_more(self) -> None:
        """The next batch of the frames left in the read buffer; reading resumes once none is
        left (unless another reason holds it)."""
        self._cutting = False
        if self._stopped:
            return
        self._take(None)
        self._cut_later()
        if not self._cutting:
            self._wakeup.set()  # the consumer may end now, if the connection closed meanwhile
            self._resume_if_clear()

    def _resume_if_clear(self) -> None:
        """Read again unless something holds it: its source's share (`_held`), frames left in
        the read buffer, its own frames waiting (half of `max_queued_frames`, or past the
        routing budget)."""
        frames = self._frames
        if (
            self._reading_paused
            and self._socket is not None
            and not self._held
            and not self._cutting
            and len(frames) < self.owner.settings.max_queued_frames // 2
            and not (frames and self.owner.inbound.over(self.host, self.outgoing))
        ):
            self._socket.resume_reading()
            self._reading_paused = False

    def _take(self, nbytes: int | None) -> None:
        """Queue (or route at once) the frames `nbytes` that arrived complete (None: the next
        batch of those left in the read buffer)."""
        reader = self._reader
        try:
            now = self._time()
            frames = reader.more(now) if nbytes is None else reader.advance(nbytes, now)
        except DecodeError:
            frames = []
        if reader.error is not None:  # the frames before a bad header are still routed
            self.owner.counters.closed_bad_frame += 1
            self.owner.warn("%s: closing: %s", self.name, reader.error)
            self._abort()
        if not frames:
            return
        if reader.frames_read == len(frames):  # its first (review 60i, listener 2)
            self._proved()
        queue = self._frames
        if (  # nothing waits, and a light read: route them now, in order
            not queue
            and self._routing is None
            and not self._draining
            and routing_cost(frames) < EAGER_LIMIT
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
        if not self.outgoing and inbound.source_over(self.host):  # every connection of its
            self.owner.holds.hold(self.host)  # source stops (review 55a, budget 1)
        full = len(queue) >= self.owner.settings.max_queued_frames  # (the budget: only while
        # it holds frames, whose routing resumes it)
        if (full or (queue and inbound.over(self.host, self.outgoing))) and self._socket:
            self._socket.pause_reading()
            self._reading_paused = True

    def hold_reading(self) -> None:
        """Its source passed its share of the routing budget: stop reading until it is back
        within it (`release_reading`; troth.transport.holds), this connection's own frames or
        none (before review 55a, budget 1, each of a source's connections read once more)."""
        self._held = True
        if self._socket is not None and not self._reading_paused:
            self._socket.pause_reading()
            self._reading_paused = True

    def release_reading(self) -> None:
        """Its source is back within its share: read again, unless its own frames hold it (as
        `_route_queued` resumes it)."""
        self._held = False
        self._resume_if_clear()

    def _routed(self) -> None:
        """Frames of this connection were routed or given up: its source, back within its
        share, reads again (troth.transport.holds)."""
        if not self.outgoing and not self.owner.inbound.source_over(self.host):
            self.owner.holds.release(self.host)

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
            self._dequeued(len(frame) + QUEUED_FRAME_COST if isinstance(frame, bytes) else frame[2])
            self._write_queued(socket, frame)
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
        if self._linger is not None:  # closed meanwhile: dropped (and counted) once
            self._linger.cancel()
            self._linger = None
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
        self._stop_timers()  # the write timer too: dropped (and counted) once
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
        self._stopped = True
        self.owner.inbound.charge(self.host, -routing_cost(self._frames), self.outgoing)
        self._frames.clear()
        self._routed()

    async def _route_queued(self) -> None:
        router, inbound = self.owner.router, self.owner.inbound
        frames = self._frames
        resume_below = self.owner.settings.max_queued_frames // 2
        batch = 0  # frames routed since the loop last ran others
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
                if self.closed.is_set() and not self._cutting:  # (what the peer sent before
                    return  # it closed is routed, the frames left in the read buffer too)
                self._wakeup.clear()
                await self._wakeup.wait()
                batch = 0
                continue
            if batch >= ROUTE_BATCH:  # the other connections' turn (review 57c, transport 2)
                batch = 0
                await asyncio.sleep(0)
                continue
            batch += 1
            body = frames.popleft()
            inbound.charge(self.host, -routing_cost((body,)), self.outgoing)
            self._routed()
            if self._reading_paused and len(frames) < resume_below:
                self._resume_if_clear()
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
            await self._enqueue(head, message.payload)
            return
        reading = self.owner.reading
        if reading is None and self._cork is None:  # the first frame of this loop iteration
            # (no read callback routing): written at once
            self._cork = self._loop.call_soon(self._uncork)
            self._write_frame(socket, head, message.payload)
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

    async def _enqueue(self, head: bytes, payload: Buffer) -> None:
        """Queue a frame (`head` || `payload`) for the write buffer, at once while this queue
        and all of them hold less than their bounds (each frame counted with what holding it
        costs beyond its bytes: `QUEUED_FRAME_COST`, `SPLIT_FRAME_COST`); else wait for room
        while the peer reads (a future, not `asyncio.timeout`: a read callback's routing has no
        task). The timers end the wait: a peer that stalls has its frame dropped (Congested),
        one not reading is closed. A large payload is held as it is, not copied (`SPLIT_FROM`):
        whoever sent it does not change it afterwards (as a frame corked until the loop
        iteration ends is held)."""
        owner = self.owner
        frame, size = _queued_frame(head, payload)
        settings = owner.settings
        self._write_corked()  # what was sent before goes first
        while True:
            if self._socket is None or self.closed.is_set():
                raise Unreachable(f"{self.name} is {self._why_closed}")
            if self._stalled:
                self._stalled_drop()
            if not self._queue and self._writable:  # drained meanwhile
                self._write_queued(self._socket, frame)
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
        socket = self._socket
        if socket is not None:
            if len(corked) == 2:  # one frame: its header and payload
                if not self._writable:  # the stall check counts what the peer takes from here
                    self._unsent_at_check += len(corked[0]) + len(corked[1])
                self._write_frame(socket, corked[0], corked[1])
            else:
                data = b"".join(corked)
                if not self._writable:
                    self._unsent_at_check += len(data)
                socket.write(data)
            self._wrote()

    def _write_frame(self, socket: asyncio.Transport, head: Buffer, payload: Buffer) -> None:
        """Write one frame, its header and its payload: joined when the event loop's write
        buffer is empty (the write tries the socket at once, and one system call takes the
        frame); else the two are written apart, since the write only appends to that buffer
        (joining them first copied every payload byte once more: review 69h, bulk 1), unless
        that buffer keeps the objects written and the payload is not `bytes` (a view or a
        bytearray: `write_copies`)."""
        if not socket.get_write_buffer_size() or (
            not self._write_copies and type(payload) is not bytes
        ):
            socket.write(b"".join((head, payload)))
            return
        writable = self._writable
        socket.write(head)
        if writable and not self._writable:  # the header paused writing: the stall check
            self._unsent_at_check += len(payload)  # counts the payload as unsent too
        socket.write(payload)

    def _write_queued(self, socket: asyncio.Transport, frame: _Queued) -> None:
        """Write a frame of the queue (`_queued_frame`)."""
        if isinstance(frame, bytes):
            socket.write(frame)
        else:
            self._write_frame(socket, frame[0], frame[1])

    def _abort(self) -> None:
        if self._socket is not None:
            self._socket.abort()

    async def close(self) -> None:
        """Close the connection (what was sent is still written) and stop routing what it
        brought."""
        if self._socket is not None:
            self._write_corked()
            for frame in self._queue:  # sent: written before the connection closes
                self._write_queued(self._socket, frame)
            self._drop_queue()  # (in the socket's buffer now: written within the write
            # timeout, or the connection is dropped)
            self.owner.budget.count(self)  # (until it is lost)
            self._socket.close()
            # the write timer stands (review 64t, transport 1: the linger in its place gave a
            # peer not reading a whole write timeout more); whichever drops the peer first
            # cancels the other (both due at once on a busy loop dropped it twice, counted
            # twice: review 64k, lead 64 transport 1)
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
