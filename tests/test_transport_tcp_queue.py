"""The TCP transport's queue per destination connection (docs/protocols.md, "TCP transport"):
frames relayed through a node to a peer whose write buffer is full wait in that connection's
queue, bounded per connection and for all of them together; a peer that reads keeps its
backpressure (nothing of a bulk stream to it is lost), one that stalls has its frames dropped
and the connection they came from goes on routing."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from tests.test_transport_tcp import ECHO, answer, echo_transport, until
from troth import limits
from troth.errors import ConfigError
from troth.routing import RoutedMessage
from troth.transport import Listener, TcpSettings, TcpTransport, frame
from troth.transport.framing import FRAME_HEADER
from troth.transport.tcp import CORK_LIMIT, TcpConnection

NARROW = 32 * 1024  # kernel buffers of the peers here: the transport's queue is what fills
EVERYONE = Listener(frozenset({ECHO}), frozenset({"worker"}))  # a relay: any connection


async def narrow_client(
    host: str, port: int, buffer: int = NARROW
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection whose receive buffers are small (the kernel's, set before connecting,
    and the stream reader's): what its reader takes is what the peer sees taken."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, (host, port))
    return await asyncio.open_connection(sock=raw, limit=buffer)


async def read_frames(reader: asyncio.StreamReader, count: int, pause: float) -> list[bytes]:
    """The payloads of `count` frames, read one at a time, `pause` s after each."""
    received = []
    for _ in range(count):
        length = FRAME_HEADER.unpack(await reader.readexactly(FRAME_HEADER.size))[1]
        received.append(bytes(RoutedMessage.decode(await reader.readexactly(length)).payload))
        await asyncio.sleep(pause)
    return received


def narrow_server_side(connection: TcpConnection) -> None:
    """The node's send buffer to a peer, small too."""
    assert connection._socket is not None
    raw = connection._socket.get_extra_info("socket")
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, NARROW)


def run(test: Callable[[TcpTransport, str, int], Awaitable[None]], settings: TcpSettings) -> None:
    """A relay: a TCP transport whose connections may reach every other one, and an echo."""

    async def main() -> None:
        transport = echo_transport(settings)
        host, port = await transport.listen("127.0.0.1", 0, EVERYONE)
        try:
            await asyncio.wait_for(test(transport, host, port), 60)
        finally:
            await transport.close()

    asyncio.run(main())


async def accepted(transport: TcpTransport, known: set[TcpConnection]) -> TcpConnection:
    """The connection the node accepted last (not among `known`)."""
    await until(lambda: len(transport.connections()) > len(known))
    (new,) = set(transport.connections()) - known
    known.add(new)
    return new


def test_a_bulk_stream_to_a_slow_reader_keeps_its_backpressure_and_arrives_whole() -> None:
    """A sender relays 12 MB through the node to a peer that reads slowly, with pauses (each
    shorter than the stall timeout): the peer's queue fills, the sender waits (its reading
    pauses), and every frame arrives, in order; nothing is dropped."""
    settings = TcpSettings(
        write_buffer=65536, max_queued_bytes=256 * 1024, max_queued_total=512 * 1024
    )
    count, size = 200, 60_000

    async def test(transport: TcpTransport, host: str, port: int) -> None:
        known: set[TcpConnection] = set()
        reader, slow_writer = await narrow_client(host, port)
        to_reader = await accepted(transport, known)
        narrow_server_side(to_reader)
        _sender_reader, writer = await asyncio.open_connection(host, port)
        sender = await accepted(transport, known)
        queued: list[int] = []  # what the reader's queue held as each frame came in
        paused: list[bool] = []  # whether the sender's reading was paused

        def watch(connection: TcpConnection, message: RoutedMessage) -> None:
            queued.append(to_reader._queued)
            paused.append(sender._reading_paused)

        transport.observers.append(watch)
        payloads = [n.to_bytes(4, "big") * (size // 4) for n in range(count)]
        for payload in payloads:
            writer.write(frame(RoutedMessage((to_reader.address,), (), payload).encode()))
        sending = asyncio.ensure_future(writer.drain())
        received = []
        for n in range(count):
            length = FRAME_HEADER.unpack(await reader.readexactly(FRAME_HEADER.size))[1]
            received.append(bytes(RoutedMessage.decode(await reader.readexactly(length)).payload))
            await asyncio.sleep(0.3 if n % 50 == 49 else 0.002)
        await sending
        assert received == payloads
        assert (transport.counters.stalled, transport.counters.dropped_stalled) == (0, 0)
        assert 0 < max(queued) <= settings.max_queued_bytes  # used: the reader was slower
        assert any(paused)  # and the sender waited for it: backpressure
        assert transport.queued_bytes == 0
        writer.close()
        slow_writer.close()

    run(test, settings)


def test_the_queues_for_stalled_readers_stay_within_their_bounds() -> None:
    """Four peers read nothing; a sender relays 4 MB to each through the node. No queue holds
    more than its bound, nor all of them more than theirs, at any frame; the node's write
    buffers to them stay within theirs; once the peers stall, their frames are dropped (the
    queues given back) and the sender's echo is answered — the peers are not closed yet (the
    write timeout is far off)."""
    settings = TcpSettings(
        write_buffer=65536,
        max_queued_bytes=256 * 1024,
        max_queued_total=512 * 1024,
        max_queued_per_source=512 * 1024,  # the peers are all 127.0.0.1: the total is tested
        stall_timeout=0.5,
        write_timeout=60.0,
    )
    written = settings.write_buffer + CORK_LIMIT + limits.MAX_TRANSPORT_FRAME + FRAME_HEADER.size

    async def test(transport: TcpTransport, host: str, port: int) -> None:
        known: set[TcpConnection] = set()
        silent = []
        for _ in range(4):
            silent.append(await narrow_client(host, port))  # never read
            narrow_server_side(await accepted(transport, known))
        stalled = list(known)
        sender = await asyncio.open_connection(host, port)
        await accepted(transport, known)
        checked: list[tuple[int, int, int, int]] = []  # as each frame came in: the largest
        # queue, all of them (counted, and as the transport counts them), the largest buffer

        def watch(connection: TcpConnection, message: RoutedMessage) -> None:
            queued = [c._queued for c in stalled]
            buffers = [c._socket.get_write_buffer_size() for c in stalled if c._socket]
            checked.append((max(queued), sum(queued), transport.queued_bytes, max(buffers)))

        transport.observers.append(watch)
        chunk = bytes(100_000)
        for _ in range(40):
            for c in stalled:
                sender[1].write(frame(RoutedMessage((c.address,), (), chunk).encode()))
        await until(lambda: len(checked) >= 160, timeout=30)  # every frame came in
        assert max(largest for largest, _, _, _ in checked) <= settings.max_queued_bytes
        assert all(total == counted for _, total, counted, _ in checked)
        assert max(total for _, total, _, _ in checked) <= settings.max_queued_total
        assert max(total for _, total, _, _ in checked) > settings.max_queued_bytes  # several
        assert max(buffer for _, _, _, buffer in checked) <= written
        assert await asyncio.wait_for(answer(sender), 10) == b"ping"
        assert transport.counters.stalled == 4
        assert transport.counters.dropped_stalled > 0
        assert transport.queued_bytes == 0
        assert all(not c.closed.is_set() for c in stalled)
        assert transport.counters.closed_not_reading == 0
        for _reader, writer in [*silent, sender]:
            writer.close()

    run(test, settings)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("TROTH_TCP_MAX_QUEUED_BYTES", "1000", "max_queued_bytes must hold a frame"),
        ("TROTH_TCP_MAX_QUEUED_TOTAL", "140000", "max_queued_total"),
        ("TROTH_TCP_MAX_QUEUED_PER_SOURCE", "140000", "max_queued_per_source"),
        ("TROTH_TCP_STALL_TIMEOUT", "0", "stall_timeout must be positive"),
        ("TROTH_TCP_WRITE_TIMEOUT", "-1", "write_timeout must be positive"),
    ],
)
def test_queue_settings_out_of_range_are_refused(variable: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        TcpSettings.from_environment({variable: value})


def test_a_reader_slower_than_its_write_buffer_drains_is_not_taken_for_stalled() -> None:
    """A peer reads 1 KB frames every 20 ms (~50 KB/s): the node's write buffer to it
    (64 KiB, full: frames queue behind it) takes 1 s to drain to a quarter, three stall
    timeouts (0.3 s), but the peer takes more than 4 KiB (a sixteenth of it) in each, so it is
    never stalled: all 150 frames a sender relays to it arrive, in order."""
    settings = TcpSettings(stall_timeout=0.3, write_buffer=65536)
    count = 150

    async def test(transport: TcpTransport, host: str, port: int) -> None:
        known: set[TcpConnection] = set()
        reader, slow_writer = await narrow_client(host, port, buffer=4096)
        to_reader = await accepted(transport, known)
        narrow_server_side(to_reader)
        _sender_reader, writer = await asyncio.open_connection(host, port)
        await accepted(transport, known)
        queued: list[int] = []  # what its queue held as each frame came in
        transport.observers.append(lambda *_: queued.append(to_reader._queued))
        payloads = [n.to_bytes(4, "big") * 250 for n in range(count)]
        for payload in payloads:
            writer.write(frame(RoutedMessage((to_reader.address,), (), payload).encode()))
        assert await read_frames(reader, count, 0.02) == payloads
        assert max(queued) > 0  # its write buffer was full: frames waited in the queue
        assert (transport.counters.stalled, transport.counters.dropped_stalled) == (0, 0)
        writer.close()
        slow_writer.close()

    run(test, settings)
