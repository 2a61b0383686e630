"""Review 26a, TCP queue 1: what the queue per destination connection holds in memory
(docs/protocols.md, "TCP transport": "its queue (1 MiB; 64 MiB for all connections together)").

The bound counts each queued frame's bytes, not what holding it costs: every frame is a
bytes object of its own (CPython: a 33-byte header, rounded up by the allocator) and a slot in
the deque. A relayed frame with an empty payload is ~30 bytes, so a queue filled with them
holds more than twice its bound (and the node more than twice `max_queued_total`): a member
relaying empty messages to peers that read slowly makes the node hold ~150 MiB where 64 MiB
is documented. The fix: charge each queued frame its bytes plus `QUEUED_FRAME_COST`."""

from __future__ import annotations

import asyncio
import sys

from tests.test_transport_tcp import until
from tests.test_transport_tcp_queue import accepted, narrow_client, narrow_server_side, run
from troth.routing import RoutedMessage
from troth.transport import TcpSettings, TcpTransport, frame
from troth.transport.tcp import TcpConnection

DEQUE_SLOT = 8
"""A deque's pointer to each item (64-bit CPython)."""


def test_a_queue_of_empty_frames_holds_no_more_memory_than_its_bound() -> None:
    """A silent peer; a sender relays 40,000 empty messages to it through the node. Once the
    peer's queue is full (the sender waits), the queue's frames, as Python objects, hold at
    most `max_queued_bytes` — as `transport.queued_bytes` counts them."""
    settings = TcpSettings(
        write_buffer=65536,
        max_queued_bytes=256 * 1024,
        max_queued_total=512 * 1024,
        stall_timeout=30.0,  # a peer that reads just enough not to stall, as far as the test
        write_timeout=60.0,  # runs (it reads nothing here)
    )

    async def test(transport: TcpTransport, host: str, port: int) -> None:
        known: set[TcpConnection] = set()
        _silent_reader, silent_writer = await narrow_client(host, port)  # never read
        to_silent = await accepted(transport, known)
        narrow_server_side(to_silent)
        _sender_reader, writer = await asyncio.open_connection(host, port)
        await accepted(transport, known)
        empty = frame(RoutedMessage((to_silent.address,), (), b"").encode())
        writer.write(empty * 40_000)
        await until(lambda: bool(to_silent._write_waiters), timeout=30)  # the queue is full
        held = sum(sys.getsizeof(f) + DEQUE_SLOT for f in to_silent._queue)
        assert held <= settings.max_queued_bytes, (held, len(to_silent._queue))
        assert transport.queued_bytes == to_silent._queued
        writer.close()
        silent_writer.close()

    run(test, settings)
