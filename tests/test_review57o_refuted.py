"""Review 57o: attacks on this session's new code that did not work (each test fails if the
defence it shows breaks)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

import pytest

from tests.test_reconnect import until
from troth.routing import Address, RoutedMessage, Router, Source
from troth.transport import Listener, TcpSettings, TcpTransport, frame
from troth.transport.tcp_connection import CUT_BATCH, TcpConnection

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs 127/8")
SINK = Address("service", "sink")


def _sink(payload: bytes) -> bytes:
    return frame(RoutedMessage((SINK,), (), payload).encode())


def _run(test: Callable[[TcpTransport, list[bytes], int], Awaitable[None]]) -> None:
    """`test` with a bare TCP transport listening on loopback, the payloads its SINK got (in
    order) and its port."""

    async def main() -> None:
        router, got = Router(), []

        async def sink(message: RoutedMessage, source: Source | None) -> None:
            got.append(bytes(message.payload))

        router.register(SINK, sink)
        transport = TcpTransport(router, TcpSettings())
        _host, port = await transport.listen("127.0.0.1", 0, Listener(frozenset({SINK})))
        try:
            await asyncio.wait_for(test(transport, got, port), 30)
        finally:
            await transport.close()

    asyncio.run(main())


def _only(transport: TcpTransport) -> TcpConnection:
    (connection,) = transport.connections()
    assert isinstance(connection, TcpConnection)
    return connection


@linux
def test_frames_cut_in_batches_arrive_all_in_order_and_reading_goes_on() -> None:
    """Transport (57c's batches): 6,000 messages in one write, tiny ones and every 97th of
    3,000 bytes (frames split across reads and across the `CUT_BATCH` boundary), while the
    source is far past its queue (64 frames) and its share: each arrives once, in order; a
    message sent after the burst on the same connection arrives too (reading resumed, no
    stall), and once the peer closes nothing is left charged to the budget."""
    count = 6_000
    payloads = [n.to_bytes(4, "big") * (750 if n % 97 == 0 else 1) for n in range(count)]

    async def test(transport: TcpTransport, got: list[bytes], port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"".join(map(_sink, payloads)))
        await writer.drain()
        await until(lambda: len(got) == count, 20)
        assert got == payloads
        assert _only(transport).frames_read == count > 5 * CUT_BATCH
        writer.write(_sink(b"tail"))
        await writer.drain()
        await until(lambda: len(got) == count + 1, 10)
        assert got[-1] == b"tail"
        writer.close()
        await until(lambda: not transport.connections(), 10)
        assert transport.inbound.held == 0

    _run(test)


@linux
def test_a_connection_closed_between_batches_routes_nothing_more_and_frees_its_budget() -> None:
    """Transport: the node closes a connection (as eviction does) while frames of its last
    read still wait in the read buffer, a batch a turn: none of them is routed after the close,
    the frames queued are given up, and the budget holds nothing for it."""
    count = 60_000

    async def test(transport: TcpTransport, got: list[bytes], port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_sink(b"") * count)
        await writer.drain()
        await until(lambda: bool(transport.connections()) and _only(transport)._cutting, 10)
        connection = _only(transport)
        await connection.close()
        routed = len(got)
        assert routed < count
        for _ in range(50):  # turns of the loop in which the next batches would have come
            await asyncio.sleep(0)
        assert len(got) == routed
        assert not connection._frames
        assert transport.inbound.held == 0
        writer.close()

    _run(test)
