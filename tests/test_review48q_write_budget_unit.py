"""Review 48q, write budget 1, in one process: the node-wide budget on the TCP write buffers
(`TcpSettings.write_buffer_total`; docs/protocols.md, "TCP transport"). Connections left
holding unsent bytes past it are held back until they drain, and then go on, nothing lost; a
peer that reads promptly is never held; the budget gives back what closed connections held;
the settings refuse a budget smaller than one write buffer."""

from __future__ import annotations

import asyncio

import pytest

from tests.test_transport_tcp import Streams, answer
from tests.test_transport_tcp_queue import (
    accepted,
    narrow_client,
    narrow_server_side,
    read_frames,
    run,
)
from troth.errors import ConfigError
from troth.routing import RoutedMessage
from troth.transport import TcpSettings, TcpTransport
from troth.transport.tcp import TcpConnection

BUFFER = 64 * 1024
SETTINGS = TcpSettings(
    write_buffer=BUFFER,
    write_buffer_total=BUFFER,  # two connections holding half a buffer each pass it
    max_queued_bytes=256 * 1024,
    max_queued_total=512 * 1024,
    max_queued_per_source=512 * 1024,  # the peers are all 127.0.0.1
    write_timeout=60.0,
)


def payloads(count: int, size: int, tag: int) -> list[bytes]:
    return [bytes([tag]) * 4 + n.to_bytes(4, "big") * (size // 4) for n in range(count)]


async def send_all(connection: TcpConnection, frames: list[bytes]) -> None:
    for payload in frames:
        await connection.send(RoutedMessage((connection.address,), (), payload))


def test_slow_readers_past_the_budget_are_held_back_and_get_everything() -> None:
    """The node sends 3 MB to each of two peers that read slowly (a pause after each frame,
    shorter than the stall timeout): their write buffers together pass the budget (one
    buffer's worth here), so a connection left holding bytes is held back until it drains,
    and both get every frame, in order; nothing is dropped, and once they close the budget
    holds nothing."""

    async def test(transport: TcpTransport, host: str, port: int) -> None:
        known: set[TcpConnection] = set()
        peers = []
        for tag in (1, 2):
            streams = await narrow_client(host, port)
            connection = await accepted(transport, known)
            narrow_server_side(connection)
            peers.append((streams, connection, payloads(100, 30_000, tag)))

        async def one(streams: Streams, connection: TcpConnection, frames: list[bytes]) -> None:
            sending = asyncio.ensure_future(send_all(connection, frames))
            received = await read_frames(streams[0], len(frames), 0.003)
            await sending
            assert received == frames

        await asyncio.gather(*(one(*peer) for peer in peers))
        counters = transport.counters
        assert counters.held_back >= 1, counters  # the budget acted
        assert (counters.stalled, counters.dropped_stalled) == (0, 0)
        for (_reader, writer), connection, _frames in peers:
            assert connection._socket is not None  # its own limit is back, once it drained
            assert connection._socket.get_write_buffer_limits()[1] == BUFFER
            writer.close()
        await asyncio.sleep(0)
        for _streams, connection, _frames in peers:
            await connection.close()
        await asyncio.sleep(0.1)
        assert transport.budget.total == 0

    run(test, SETTINGS)


def test_a_peer_that_reads_promptly_is_not_held_back_while_others_hold_the_budget() -> None:
    """Two peers read nothing; the node sends them frames until both are full (held back, or
    past their own buffer). A third peer's echo is then answered at once, its connection
    never held back: it holds no unsent bytes."""

    async def test(transport: TcpTransport, host: str, port: int) -> None:
        known: set[TcpConnection] = set()
        stuck = []
        for tag in (1, 2):
            streams = await narrow_client(host, port)
            connection = await accepted(transport, known)
            narrow_server_side(connection)
            stuck.append(streams)
            frames = iter(payloads(1000, 8_000, tag))
            while connection._writable:
                await send_all(connection, [next(frames)])
        assert transport.budget.over(asyncio.get_running_loop().time())
        before = transport.counters.held_back
        prompt = await asyncio.open_connection(host, port)
        reader = await accepted(transport, known)
        for _ in range(20):
            assert await answer(prompt) == b"ping"
        assert not reader._held_back
        assert transport.counters.held_back == before
        assert transport.budget.count(reader) == 0
        for _reader, writer in (*stuck, prompt):
            writer.close()

    run(test, SETTINGS)


def test_a_budget_smaller_than_one_write_buffer_is_refused() -> None:
    """A budget below one connection's write buffer would hold back every stream that fills
    its buffer by itself: refused, as the other bounds that do not fit each other."""
    with pytest.raises(ValueError, match="write_buffer_total"):
        TcpSettings(write_buffer=BUFFER, write_buffer_total=BUFFER - 1)
    with pytest.raises(ConfigError, match="write_buffer_total"):
        TcpSettings.from_environment({"TROTH_TCP_WRITE_BUFFER_TOTAL": "1000"})
