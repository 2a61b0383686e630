"""Review 72m (perf: `channel.bulk.relay`, `channel.bulk.one-hop`): guards for the cut of this
pass, which changes no promise (benchmarks/README.md, "Pass 72m").

- bulk 1: a frame queued while a connection's write buffer is full (`TcpConnection._enqueue`)
  is held as its header and its payload apart when the payload is large (`SPLIT_FROM`), not
  joined first (a copy of every payload byte, at each sending hop whose peer reads slower than
  it is sent to: the sender, a relay). It is charged what it keeps alive: its header, the whole
  object its payload is a view of (a relayed payload keeps the frame it came in alive), and
  `SPLIT_FRAME_COST`; never more than the largest joined frame (else it is joined), so a frame
  still always fits an empty queue. The tests check the charges, that frames of both kinds
  queued together arrive whole and in order, and that a connection cut while it holds them
  gives every charge back."""

from __future__ import annotations

import asyncio
import sys

from tests.test_transport_tcp import Streams, answer, until
from tests.test_transport_tcp_queue import accepted, narrow_client, narrow_server_side, run
from troth import limits
from troth.routing import RoutedMessage
from troth.transport import TcpSettings, TcpTransport, frame
from troth.transport.framing import FRAME_HEADER
from troth.transport.settings import QUEUED_FRAME_COST
from troth.transport.tcp import TcpConnection
from troth.transport.tcp_connection import SPLIT_FRAME_COST, SPLIT_FROM, _queued_frame

_HEAD = bytes(40)
_SETTINGS = TcpSettings(write_buffer=65536, max_queued_bytes=512 * 1024)


def test_a_large_payload_is_queued_apart_and_charged_what_it_keeps_alive() -> None:
    """bulk 1: a small frame is joined (charged its bytes and `QUEUED_FRAME_COST`, as before);
    a large one is held as it is (the very object, no copy), charged its header, the whole
    object its payload views (as allocated: 72w transport 1), and both costs; one whose charge
    would pass the largest joined frame's is joined."""
    small = bytes(100)
    queued, charge = _queued_frame(_HEAD, small)
    assert queued == _HEAD + small
    assert charge == len(_HEAD) + len(small) + QUEUED_FRAME_COST

    packet = bytearray(SPLIT_FROM)  # a sealed channel packet, as a sender queues it
    queued, charge = _queued_frame(_HEAD, packet)
    assert isinstance(queued, tuple)
    assert queued[0] is _HEAD
    assert queued[1] is packet
    assert queued[2] == charge
    assert charge == len(_HEAD) + sys.getsizeof(packet) + QUEUED_FRAME_COST + SPLIT_FRAME_COST

    body = bytes(8_000 + 60_000)  # a relayed frame: its old route header, then the payload
    view = memoryview(body)[8_000:]
    queued, charge = _queued_frame(_HEAD, view)
    assert isinstance(queued, tuple)
    assert queued[1] is view
    assert charge == len(_HEAD) + sys.getsizeof(body) + QUEUED_FRAME_COST + SPLIT_FRAME_COST

    huge = memoryview(bytes(2 * limits.MAX_TRANSPORT_FRAME))[:SPLIT_FROM]  # keeps too much
    queued, charge = _queued_frame(_HEAD, huge)
    assert queued == _HEAD + bytes(SPLIT_FROM)
    assert charge == len(_HEAD) + SPLIT_FROM + QUEUED_FRAME_COST


async def _fill(
    transport: TcpTransport, host: str, port: int, sizes: list[int]
) -> tuple[TcpConnection, asyncio.StreamReader, asyncio.StreamWriter, list[bytes], Streams]:
    """A narrow reader that reads nothing yet, and frames of `sizes` relayed to it through the
    node: its connection, reader and writer, the payloads sent, and the sender's streams."""
    known: set[TcpConnection] = set()
    reader, slow_writer = await narrow_client(host, port)
    to_reader = await accepted(transport, known)
    narrow_server_side(to_reader)
    sender = await asyncio.open_connection(host, port)
    await accepted(transport, known)
    payloads = [n.to_bytes(4, "big") * (size // 4) for n, size in enumerate(sizes)]
    for payload in payloads:
        sender[1].write(frame(RoutedMessage((to_reader.address,), (), payload).encode()))
    await until(lambda: len(to_reader._queue) > 0)
    return to_reader, reader, slow_writer, payloads, sender


def test_small_and_large_frames_queued_together_arrive_whole_and_in_order() -> None:
    """bulk 1: large and small frames relayed in turn to a reader that reads only once the
    node's queue to it holds both kinds: every frame arrives whole, in order, and every charge
    is given back."""
    sizes = [60_000 if n % 2 else 100 for n in range(40)]

    async def test(transport: TcpTransport, host: str, port: int) -> None:
        to_reader, reader, slow_writer, payloads, sender = await _fill(transport, host, port, sizes)
        kinds = {type(entry) for entry in to_reader._queue}
        await until(lambda: len({type(e) for e in to_reader._queue} | kinds) == 2)
        received = []
        for _ in payloads:
            length = FRAME_HEADER.unpack(await reader.readexactly(FRAME_HEADER.size))[1]
            received.append(bytes(RoutedMessage.decode(await reader.readexactly(length)).payload))
        assert received == payloads
        assert transport.counters.dropped_stalled == 0
        await until(lambda: transport.queued_bytes == 0)
        assert to_reader._queued == 0
        slow_writer.close()
        sender[1].close()

    run(test, _SETTINGS)


def test_a_connection_cut_while_it_holds_frames_apart_gives_their_charges_back() -> None:
    """bulk 1: the reader's connection is reset while the node's queue to it holds large
    frames apart: the queue is given up, every charge back (the connection's, the source's,
    the node's), and the sender's connection goes on (its echo answered)."""

    async def test(transport: TcpTransport, host: str, port: int) -> None:
        to_reader, _reader, slow_writer, _payloads, sender = await _fill(
            transport, host, port, [60_000] * 30
        )
        await until(lambda: any(isinstance(e, tuple) for e in to_reader._queue))
        assert transport.queued_bytes > 0
        slow_writer.transport.abort()  # a reset, mid-queue
        await until(lambda: to_reader.closed.is_set())
        await until(lambda: transport.queued_bytes == 0)
        assert to_reader._queued == 0
        assert transport.queued_from(to_reader.host) == 0
        assert await asyncio.wait_for(answer(sender), 10) == b"ping"
        sender[1].close()

    run(test, _SETTINGS)
