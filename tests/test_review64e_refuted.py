"""Review 64e: attacks on the TCP transport and relays that did not work (each test would fail
if the defence it names broke)."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable

import pytest

from troth import limits
from troth.errors import RoutingError
from troth.routing import Address, RoutedMessage, Router, Source
from troth.transport import Listener, TcpSettings, TcpTransport, frame
from troth.transport.framing import FRAME_HEADER

SINK = Address("service", "sink")


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def serve(
    test: Callable[[TcpTransport, int, list[RoutedMessage]], Awaitable[None]],
    settings: TcpSettings,
) -> None:
    """A transport listening on loopback whose SINK keeps what reaches it."""

    async def main() -> None:
        router, arrived = Router(), []

        async def sink(message: RoutedMessage, source: Source | None) -> None:
            arrived.append(message)

        router.register(SINK, sink)
        transport = TcpTransport(router, settings)
        _, port = await transport.listen("127.0.0.1", 0, Listener(frozenset({SINK})))
        try:
            await asyncio.wait_for(test(transport, port, arrived), 10)
        finally:
            await transport.close()

    asyncio.run(main())


async def server_closed(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), 3) == b""
    except (TimeoutError, ConnectionResetError):
        return False


def test_a_frame_dribbled_a_byte_at_a_time_is_closed_at_the_frame_timeout() -> None:
    """Slowloris: every byte of a frame comes within a tenth of `frame_timeout` of the one
    before, but the frame is not done within it: the stall clock runs from the frame's first
    byte (`FrameReader.partial_since`), not from the last byte, so the connection is closed."""

    async def test(transport: TcpTransport, port: int, _: list[RoutedMessage]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        data = frame(RoutedMessage((SINK,), (), bytes(64)).encode())
        for byte in data:
            if transport.counters.closed_stalled:
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.02)
        assert await server_closed(reader)
        assert transport.counters.closed_stalled == 1
        writer.close()

    serve(test, TcpSettings(frame_timeout=0.2))


def test_a_reset_in_the_middle_of_a_frame_leaves_no_count_or_budget_behind() -> None:
    """RST mid-frame (SO_LINGER 0), from connections that also left frames waiting to be
    routed behind a routing that waits: the table, its per-source and per-network counts,
    the frameless set and the routing budget are all back to nothing."""

    async def test(transport: TcpTransport, port: int, arrived: list[RoutedMessage]) -> None:
        whole = frame(RoutedMessage((SINK,), (), b"x" * 100).encode())
        sockets = []
        for _ in range(4):
            raw = socket.create_connection(("127.0.0.1", port))
            raw.sendall(whole * 3 + whole[:50])  # three frames and half of one
            sockets.append(raw)
        await until(lambda: len(arrived) == 12 and len(transport.connections()) == 4)
        for raw in sockets:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw.close()
        await until(lambda: not transport.connections())
        assert not transport._accepted
        assert not transport._per_host
        assert not transport._per_network
        assert not transport._unproven
        assert transport.inbound.held == 0

    serve(test, TcpSettings())


def test_frames_at_the_frame_limit_cross_and_one_byte_over_is_refused_both_ways() -> None:
    """What one side may send the other accepts: a message of exactly `MAX_TRANSPORT_FRAME`
    bytes is sent by a transport and routed by the other; one byte more is refused by the
    sender (RoutingError, nothing written) and, sent raw, closes the connection at its header."""

    async def test(transport: TcpTransport, port: int, arrived: list[RoutedMessage]) -> None:
        client = TcpTransport(Router(), TcpSettings())
        try:
            connection = await client.connect("127.0.0.1", port)
            empty = len(RoutedMessage((SINK,), (), b"").encode())
            largest = RoutedMessage((SINK,), (), bytes(limits.MAX_TRANSPORT_FRAME - empty))
            assert len(largest.encode()) == limits.MAX_TRANSPORT_FRAME
            await connection.send(largest)
            await until(lambda: len(arrived) == 1)
            over = RoutedMessage((SINK,), (), bytes(limits.MAX_TRANSPORT_FRAME - empty + 1))
            with pytest.raises(RoutingError, match="over the frame limit"):
                await connection.send(over)
        finally:
            await client.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(FRAME_HEADER.pack(1, limits.MAX_TRANSPORT_FRAME + 1))
        assert await server_closed(reader)
        assert transport.counters.closed_bad_frame == 1
        assert len(arrived) == 1
        writer.close()

    serve(test, TcpSettings())


def test_one_peer_that_does_not_read_holds_no_other_connection_open_at_close() -> None:
    """Close ordering: of the accepted connections, one's peer reads nothing and its write
    buffer is full; `close()` returns at once, the other peers see their connections end, and
    the stuck one is dropped once `write_timeout` passes (the close's linger timer)."""

    async def test(transport: TcpTransport, port: int, arrived: list[RoutedMessage]) -> None:
        stuck = socket.create_connection(("127.0.0.1", port))
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.sendall(frame(RoutedMessage((SINK,), (), b"hello").encode()))
        others = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        await until(lambda: len(arrived) == 1 and len(transport.connections()) == 4)
        (connection,) = [c for c in transport.connections() if c.frames_read]
        filler = RoutedMessage(arrived[0].return_route, (), bytes(60_000))
        for _ in range(200):  # past the kernel's buffers: the rest waits in the event loop's
            connection._socket.write(frame(filler.encode()))  # type: ignore[union-attr]
        assert connection.buffered() > 0
        await asyncio.wait_for(transport.close(), 1)
        for reader, _ in others:
            assert await server_closed(reader)
        assert connection.buffered() > 0  # still holding what the stuck peer does not take
        await until(lambda: connection.buffered() == 0)  # the linger timer dropped it
        assert transport.counters.closed_not_reading == 1
        stuck.close()
        for _, writer in others:
            writer.close()

    serve(test, TcpSettings(write_timeout=0.3))
