"""Review 26a, TCP queue 2: one source address holds all of `max_queued_total`
(docs/protocols.md, "TCP transport").

The total bound (64 MiB) is 64 queues of 1 MiB, and one source address may hold 64
connections: its connections, each reading just above the stall floor (64 KiB in 2 s, and
draining its write buffer to a quarter within the write timeout: ~80 KB/s each), hold the
node's whole queue budget for as long as something sends them large answers. Every other
connection whose write buffer fills (an honest bulk transfer, a peer briefly slow) then has no
queue at all: the frames for it wait in `space_waiters`, and the connection each came from
waits with it, everything behind it on that connection held back — what the queue was meant
to end (review 23b, relay tcp 1). Stalled peers are dropped within the stall timeout, slow
readers are not, so the total does not protect the others.

Here a peer that reads just above the floor is modelled by a silent one with stall and write
timeouts longer than the test. Fixed: a share of `max_queued_total` per source address
(`max_queued_per_source`, a quarter of it by default), so one address cannot take it all."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from tests.test_transport_tcp import until
from tests.test_transport_tcp_queue import (
    NARROW,
    accepted,
    narrow_client,
    narrow_server_side,
    run,
)
from troth.routing import RoutedMessage
from troth.transport import TcpSettings, TcpTransport, frame
from troth.transport.tcp import TcpConnection


async def narrow_client_from(
    source: str, host: str, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """`narrow_client` from another loopback source address."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, NARROW)
    raw.bind((source, 0))
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, (host, port))
    return await asyncio.open_connection(sock=raw, limit=NARROW)


Streams = list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
CHUNK = 50_000


async def _relay_to(
    transport: TcpTransport, host: str, port: int, known: set[TcpConnection], to: TcpConnection
) -> Streams:
    """A sender that relays 1 MB (20 frames) through the node to `to`."""
    sender = await asyncio.open_connection(host, port)
    await accepted(transport, known)
    for _ in range(20):
        sender[1].write(frame(RoutedMessage((to.address,), (), bytes(CHUNK)).encode()))
    return [sender]


async def squat_then_send_elsewhere(
    transport: TcpTransport, host: str, port: int, squatted: Callable[[], None]
) -> tuple[TcpConnection, Streams]:
    """Two connections from 127.0.0.1 read nothing; two senders relay 1 MB to each through
    the node, until each one's queue is full (its sender waits) or 127.0.0.1's share is;
    `squatted()` then. Then a peer at 127.0.0.2 reads slowly (nothing, while the test runs)
    and a third sender relays 1 MB to it, more than its write buffer and the kernels' buffers
    hold. Returns that peer's connection once its frames are queued or wait for room, and
    every stream opened (the caller closes them)."""
    known: set[TcpConnection] = set()
    squatters, streams = [], []
    for _ in range(2):
        streams.append(await narrow_client(host, port))  # never read
        squatter = await accepted(transport, known)
        narrow_server_side(squatter)
        squatters.append(squatter)
    for squatter in squatters:
        streams += await _relay_to(transport, host, port, known, squatter)
    await until(lambda: all(s._write_waiters for s in squatters), timeout=30)
    squatted()
    streams.append(await narrow_client_from("127.0.0.2", host, port))  # reads slowly
    honest = await accepted(transport, known)
    assert honest.host == "127.0.0.2"
    narrow_server_side(honest)
    streams += await _relay_to(transport, host, port, known, honest)
    await until(lambda: honest._queued > 0 or bool(transport.space_waiters), timeout=30)
    return honest, streams


@pytest.mark.usefixtures("loopback_sources")  # its clients stand for remote hosts
def test_one_source_address_cannot_take_every_connections_queue() -> None:
    """Two connections from 127.0.0.1 read nothing (as far as the test runs) and fill the share
    of 127.0.0.1 (`max_queued_per_source`, half of `max_queued_total` here); then a slow peer
    at 127.0.0.2 is sent 1 MB (`squat_then_send_elsewhere`). Its frames past the buffers go
    to its own queue, and its sender goes on; none waits for the queues of 127.0.0.1 to
    drain."""
    settings = TcpSettings(
        write_buffer=65536,
        max_queued_bytes=256 * 1024,
        max_queued_total=512 * 1024,
        max_queued_per_source=256 * 1024,
        stall_timeout=60.0,
        write_timeout=120.0,
        first_frame_timeout=120.0,  # the silent peers send nothing
    )

    async def test(transport: TcpTransport, host: str, port: int) -> None:
        def squatted() -> None:
            taken = transport.queued_bytes
            # 127.0.0.1 holds its share, not the whole total
            assert settings.queued_per_source - CHUNK - 100 < taken
            assert taken <= settings.queued_per_source

        honest, streams = await squat_then_send_elsewhere(transport, host, port, squatted)
        assert not transport.space_waiters  # nothing waits for 127.0.0.1's queues
        assert honest._queued > 0
        for _reader, writer in streams:
            writer.close()

    run(test, settings)
