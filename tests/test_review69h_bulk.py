"""Review 69h (perf: `channel.bulk.relay`): guards for the cuts of this pass, which change no
promise (benchmarks/README.md, "Pass 69h").

- bulk 1: a frame written while the event loop's write buffer already holds data is written as
  its header and its payload apart (each only appended to that buffer), no longer joined
  first (a copy of every payload byte, at every sending hop: the sender and each relay). The
  test relays a stream through a node to a reader slow enough that the node's write buffer
  holds data as frames are written to it, and checks that every frame arrives whole and in
  order, and that the buffer was indeed not empty (the split path ran)."""

from __future__ import annotations

import asyncio

from tests.test_transport_tcp_queue import accepted, narrow_client, narrow_server_side, run
from troth.routing import RoutedMessage
from troth.transport import TcpSettings, TcpTransport, frame
from troth.transport.framing import FRAME_HEADER
from troth.transport.tcp import TcpConnection


def test_frames_written_behind_buffered_data_arrive_whole_and_in_order() -> None:
    """bulk 1: 60 frames of 60 KB relayed to a narrow, slow reader arrive as sent; some were
    written while the node's write buffer to the reader held data."""
    count, size = 60, 60_000

    async def test(transport: TcpTransport, host: str, port: int) -> None:
        known: set[TcpConnection] = set()
        reader, slow_writer = await narrow_client(host, port)
        to_reader = await accepted(transport, known)
        narrow_server_side(to_reader)
        _sender_reader, writer = await asyncio.open_connection(host, port)
        await accepted(transport, known)
        buffered: list[int] = []  # what the node's write buffer to the reader held, per frame
        transport.observers.append(lambda _c, _m: buffered.append(to_reader.buffered()))
        payloads = [n.to_bytes(4, "big") * (size // 4) for n in range(count)]
        for payload in payloads:
            writer.write(frame(RoutedMessage((to_reader.address,), (), payload).encode()))
        sending = asyncio.ensure_future(writer.drain())
        received = []
        for n in range(count):
            length = FRAME_HEADER.unpack(await reader.readexactly(FRAME_HEADER.size))[1]
            received.append(bytes(RoutedMessage.decode(await reader.readexactly(length)).payload))
            if n % 20 == 19:
                await asyncio.sleep(0.01)
        await sending
        assert received == payloads
        assert any(buffered)  # frames were written behind data already buffered
        assert (transport.counters.stalled, transport.counters.dropped_stalled) == (0, 0)
        writer.close()
        slow_writer.close()

    run(test, TcpSettings())
