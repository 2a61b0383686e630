"""Review 53n, queues 1: frames read from a TCP connection wait to be routed (a slow router, a
worker that takes its time) in that connection's queue, bounded per connection
(`TcpSettings.max_queued_frames`, 64 frames of up to 128 KiB) but, before, not for the node:
per source address (up to 64 connections) ~512 MiB, across sources more. Now their bytes are
bounded for the node (`TcpSettings.max_routing_total`, `limits.MAX_ROUTING_QUEUE_BYTES`) and
per source address (`routing_per_source`, a quarter): past either, reading pauses on the
connection that brought the frame (back-pressure, nothing dropped) until its own queue drains
(docs/protocols.md, "TCP transport").

In one process, sans sockets: the transport's connections are driven through their protocol
callbacks by a fake socket that honours `pause_reading`; the router's worker waits until every
connection stopped, so nothing queued is routed meanwhile."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from troth import limits
from troth.errors import ConfigError
from troth.routing import Address, RoutedMessage, Router, Source
from troth.transport import Listener, TcpSettings, TcpTransport, frame
from troth.transport.settings import QUEUED_FRAME_COST
from troth.transport.tcp import TcpConnection

SLOW = Address("service", "slow")
BUDGET = 64 << 20
"""The node-wide bound this review defines (the default, `limits.MAX_ROUTING_QUEUE_BYTES`)."""
SHARE = BUDGET // 4
"""One source address's share of it."""
BODY = RoutedMessage((SLOW,), (), bytes(120 * 1024)).encode()
WIRE = frame(BODY)


class FakeSocket(asyncio.Transport):
    """What a TcpConnection asks of its socket, recorded."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self.peer = (host, port)
        self.paused = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def write(self, data: Any) -> None:
        pass

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass


def queued(connection: TcpConnection) -> int:
    """Bytes of frames waiting in `connection` to be routed."""
    return sum(map(len, connection._frames))


Peers = list[tuple[TcpConnection, FakeSocket, list[int]]]


def feed(peers: Peers) -> None:
    """One more frame from each connection with frames left to send whose reading is not
    paused, round robin, one frame a read."""
    for connection, socket, left in peers:
        if socket.paused or not left[0]:
            continue
        left[0] -= 1
        data = memoryview(WIRE)
        while data:
            space = connection.get_buffer(-1)
            size = min(len(space), len(data))
            space[:size] = data[:size]
            data = data[size:]
            connection.buffer_updated(size)


async def flood(hosts: list[str], per_host: int, frames: int) -> tuple[int, dict[str, int]]:
    """`per_host` connections from each of `hosts` each send `frames` frames of ~120 KiB to a
    worker that does not return until every connection stopped (sent all, or paused); the
    bytes then queued for routing, in all and per host. Then the worker returns: the rest is
    sent as reading resumes, and every frame is routed, none dropped."""
    router = Router()
    release = asyncio.Event()
    routed = 0

    async def slow(message: RoutedMessage, source: Source | None) -> None:
        nonlocal routed
        await release.wait()
        routed += 1

    router.register(SLOW, slow)
    transport = TcpTransport(router, TcpSettings())
    assert transport.settings.max_routing_total == BUDGET
    assert transport.settings.routing_per_source == SHARE
    listener = Listener(frozenset({SLOW}))
    peers: Peers = []
    for host in hosts:
        for port in range(per_host):
            connection = TcpConnection(transport, outgoing=False, listener=listener, peer="?")
            socket = FakeSocket(host, 1000 + port)
            connection.connection_made(socket)
            peers.append((connection, socket, [frames]))
    try:
        for _ in range(frames):
            feed(peers)
        per_source: dict[str, int] = {}
        for connection, _socket, _left in peers:
            per_source[connection.host] = per_source.get(connection.host, 0) + queued(connection)
        total = sum(per_source.values())
        assert transport.inbound.held == total + QUEUED_FRAME_COST * sum(
            len(connection._frames) for connection, _socket, _left in peers
        )
        release.set()
        sent = len(peers) * frames
        for _ in range(100 * sent):
            if routed == sent:
                break
            feed(peers)
            await asyncio.sleep(0)
        assert routed == sent, (routed, sent)  # back-pressure: nothing dropped
        assert transport.inbound.held == 0
        assert not any(socket.paused for _connection, socket, _left in peers)
        assert transport.counters.dropped_messages == 0
        return total, per_source
    finally:
        release.set()
        await transport.close()


def test_one_source_holds_at_most_its_share_of_the_routing_queues() -> None:
    """Three connections from one address, 64 frames each (~22.5 MiB): before, all queued; now
    at most a quarter of the budget, plus the frame that passed it on each connection."""
    total, per_source = asyncio.run(flood(["10.0.0.1"], 3, 64))
    assert total == per_source["10.0.0.1"]
    assert SHARE < total <= SHARE + 3 * len(BODY), total


def test_the_routing_queues_of_all_sources_are_bounded_for_the_node() -> None:
    """Five addresses, two connections each, 64 frames a connection (~75 MiB, each address
    within its share): before, all queued; now at most the budget, plus the frame that passed
    it on each connection."""
    hosts = [f"10.0.{n}.1" for n in range(5)]
    total, per_source = asyncio.run(flood(hosts, 2, 64))
    assert all(held <= SHARE + 2 * len(BODY) for held in per_source.values()), per_source
    assert BUDGET < total <= BUDGET + 10 * len(BODY), total


def test_frames_waiting_when_a_connection_closes_give_their_bytes_back() -> None:
    """A connection closed with frames waiting to be routed (its consumer stopped): the budget
    no longer counts them."""

    async def main() -> None:
        router = Router()
        never = asyncio.Event()

        async def slow(message: RoutedMessage, source: Source | None) -> None:
            await never.wait()

        router.register(SLOW, slow)
        transport = TcpTransport(router, TcpSettings())
        connection = TcpConnection(
            transport, outgoing=False, listener=Listener(frozenset({SLOW})), peer="?"
        )
        socket = FakeSocket("10.0.0.9", 1000)
        connection.connection_made(socket)
        peers: Peers = [(connection, socket, [8])]
        for _ in range(8):
            feed(peers)
        await asyncio.sleep(0)
        assert transport.inbound.held_by("10.0.0.9") > 0
        await transport.close()
        assert transport.inbound.held == 0
        assert transport.inbound.held_by("10.0.0.9") == 0

    asyncio.run(main())


def test_the_settings_refuse_a_routing_budget_below_one_frame() -> None:
    with pytest.raises(ConfigError, match="max_routing_total"):
        TcpSettings.from_environment({"TROTH_TCP_MAX_ROUTING_TOTAL": "1000"})
    assert limits.MAX_ROUTING_QUEUE_BYTES == BUDGET
    assert TcpSettings.from_environment(
        {"TROTH_TCP_MAX_ROUTING_TOTAL": str(8 << 20)}
    ).routing_per_source == (2 << 20)


async def strangers_over_the_total() -> tuple[TcpTransport, asyncio.Event, Listener]:
    """A transport whose accepted connections, from eight addresses, hold the node-wide routing
    total over its bound (a worker that never returns), and the event that releases it."""
    router = Router()
    never = asyncio.Event()

    async def slow(message: RoutedMessage, source: Source | None) -> None:
        await never.wait()

    router.register(SLOW, slow)
    transport = TcpTransport(router, TcpSettings(max_routing_total=4 << 20))
    listener = Listener(frozenset({SLOW}))
    peers: Peers = []
    for n in range(8):
        connection = TcpConnection(transport, outgoing=False, listener=listener, peer="?")
        socket = FakeSocket(f"10.0.{n}.1", 1000)
        connection.connection_made(socket)
        peers.append((connection, socket, [16]))
    await asyncio.sleep(0)  # the consumers wait for frames
    for _ in range(16):
        feed(peers)
    assert transport.inbound.held > transport.settings.max_routing_total
    return transport, never, listener


def test_a_connection_holding_no_frame_is_not_paused_by_the_budget() -> None:
    """The budget is passed by other sources' connections; a connection whose one light frame
    is routed at once from the read callback (its routing waiting on the slow worker) holds
    no frame waiting: its reading is not paused (nothing it holds would be routed to resume
    it)."""

    async def main() -> None:
        transport, never, listener = await strangers_over_the_total()
        light = TcpConnection(transport, outgoing=False, listener=listener, peer="?")
        socket = FakeSocket("10.0.9.1", 1000)
        light.connection_made(socket)
        await asyncio.sleep(0)  # its consumer waits for frames
        data = frame(RoutedMessage((SLOW,), (), b"light").encode())
        space = light.get_buffer(-1)
        space[: len(data)] = data
        light.buffer_updated(len(data))
        assert light._routing is not None  # routed from the read callback, waiting
        assert not light._frames
        assert not socket.paused
        never.set()
        await transport.close()

    asyncio.run(main())
