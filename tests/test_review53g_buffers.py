"""Review 53g, buffers 1: a read buffer kept large by a trickle just over the small buffer.

Review 49f gave a connection's read buffer back at the sweep when at most `small_read_buffer`
(16 KiB) came in since the sweep before. A peer that once sent a burst (its buffer grown to
`large_read_buffer`, 512 KiB, every page of it written) and then a frame of 17 KiB per sweep
(every 2.5 s: about 7 KB/s) kept the whole large buffer for as long as it went on: 64
connections from one address held 32 MiB, the connection cap (1024) 512 MiB, for ~7 MB/s in
all, 32 times what a sweep interval brought. A buffer larger than the small one is now kept
only while at least half of it came in since the sweep before (`FrameReader.settle`), so what
a connection's read buffer holds is at most twice what its peer sent in a sweep interval (or
the small buffer); a bulk stream still keeps its large buffer.
"""

from __future__ import annotations

import asyncio

from tests.test_review49f_buffers import NOWHERE, SLOW
from tests.test_transport_tcp import SMALL, Server, run, until
from troth.routing import RoutedMessage
from troth.transport import TcpConnection, frame
from troth.transport.framing import LARGE_BUFFER, FrameReader

TRICKLE = 17 * 1024  # just over the small buffer


def trickle_frame() -> bytes:
    """A frame of about TRICKLE bytes that reaches nothing (dropped, the connection stays)."""
    return frame(RoutedMessage((NOWHERE,), (), bytes(TRICKLE)).encode())


def test_a_trickle_just_over_the_small_buffer_does_not_keep_a_large_one() -> None:
    reader = FrameReader()
    assert len(reader.feed(frame(bytes(120_000)) * 5, 0.0)) == 5  # a burst: grown to large
    assert reader.capacity == LARGE_BUFFER
    assert not reader.settle()  # the burst itself: kept
    assert len(reader.feed(trickle_frame(), 1.0)) == 1
    assert reader.settle()
    assert reader.capacity == reader.small


def test_connections_trickling_just_over_the_small_buffer_give_their_buffers_back() -> None:
    """Four connections, each a burst and then a 17 KiB frame before each sweep (run by the
    test, as review 49f's): their read buffers go back to the small size."""

    async def test(server: Server) -> None:
        transport = server.transport
        writers = []
        for _ in range(4):
            _reader, writer = await server.client()
            writer.write(frame(bytes(120_000)) * 5)
            await writer.drain()
            writers.append(writer)
        await until(lambda: transport.counters.dropped_messages == 20)
        connections = [c for c in transport.connections() if isinstance(c, TcpConnection)]
        assert [c.read_buffer for c in connections] == [LARGE_BUFFER] * 4
        loop = asyncio.get_running_loop()
        for n in range(3):
            for writer in writers:
                writer.write(trickle_frame())
                await writer.drain()
            await until(lambda n=n: transport.counters.dropped_messages == 24 + 4 * n)  # type: ignore[misc]
            for connection in connections:
                connection._check(loop.time())
        assert [c.read_buffer for c in connections] == [SMALL] * 4
        for writer in writers:
            writer.close()

    run(test, SLOW)


def test_a_bulk_stream_keeps_its_large_buffer() -> None:
    """The other side: half the buffer or more since the last sweep keeps it (a bulk stream
    is not reallocated at each sweep)."""
    reader = FrameReader()
    body = bytes(100_000)
    for _ in range(3):
        assert len(reader.feed(frame(body) * 3, 0.0)) == 3  # 300 KB a sweep interval
        assert not reader.settle()
        assert reader.capacity == LARGE_BUFFER
    assert reader.settle()  # nothing since: quiet
    assert reader.capacity == reader.small
