"""Review 55a, budget 1: the routing budget on a real relay node over TCP (loopback).

A relay node holds the frames its accepted connections brought while they wait to be routed
within `TcpSettings.max_routing_total`, a quarter of it per source address
(`routing_per_source`; review 53n, queues 1). Past either, the connection whose read passed it
paused; but each connection only looked after its own read, so one source passed its share by
one read (up to `large_read_buffer`, 512 KiB) per connection it held, up to
`max_connections_per_source` (64) of them: ~32 MiB past a 16 MiB share, and no test drove the
budget on a real node. Here a relayed member b stops reading its connection to the hub, and
one stranger's address fills b's way with frames to `/relay/b`; then it opens more connections
and sends more. Now a source past its share holds every connection of its own: none reads
until its frames drop back under it, new ones included (docs/protocols.md, "TCP transport").
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.support.relay_tcp import hub_and_relayed_b, stop_reading
from tests.test_reconnect import until
from tests.test_review53n_queues import SLOW, FakeSocket, feed
from troth.limits import MAX_TRANSPORT_FRAME, READ_PAST_ROUTING_TOTAL
from troth.node.runtime import NodeRuntime
from troth.node.services.relay import RelayService
from troth.routing import RoutedMessage, Router, Source, parse_route
from troth.transport import Listener, TcpTransport, frame
from troth.transport.settings import QUEUED_FRAME_COST, TcpSettings
from troth.transport.tcp import TcpConnection

TOTAL = 4 << 20  # the hub's max_routing_total: 1 MiB a source
READ = 512 << 10  # every read buffer at its largest from the start (a sender grows its own in
# a few heavy reads; here no warm-up is needed to show what one read holds)
SETTINGS = TcpSettings(
    max_routing_total=TOTAL,
    stall_timeout=60.0,
    write_timeout=60.0,
    small_read_buffer=READ,
    large_read_buffer=READ,
)
PAYLOAD = 60_000  # bytes of each frame to /relay/b
MORE = 8  # connections the stranger opens once its first one waits


def relayed_frames(count: int, name: str = "b") -> bytes:
    """`count` frames to /relay/`name`, each `PAYLOAD` bytes of junk."""
    message = RoutedMessage(parse_route(f"/relay/{name}"), (), bytes(PAYLOAD)).encode()
    return frame(message) * count


class StalledOwner:
    """A hub over TCP on loopback (the routing budget of `SETTINGS`) and b, a member behind
    its relay `/relay/b`, that reads nothing from its connection to the hub: what strangers
    send to /relay/b waits, once b's way is full, in their connections at the hub."""

    def __init__(self, hub: NodeRuntime, b: NodeRuntime, to_hub: TcpConnection) -> None:
        self.hub, self.b, self.to_hub = hub, b, to_hub
        assert isinstance(hub.tcp, TcpTransport)
        self.tcp = hub.tcp
        self.before = set(hub.tcp.connections())
        relay = hub.host.services["relay"]
        assert isinstance(relay, RelayService)
        self.relay = relay
        self.writers: list[asyncio.StreamWriter] = []
        self.sent = 0

    def strangers(self) -> list[TcpConnection]:
        """The hub's connections from the strangers."""
        return [
            c
            for c in self.tcp.connections()
            if c not in self.before and isinstance(c, TcpConnection)
        ]

    async def connect(self, source: str = "127.0.0.1") -> asyncio.StreamWriter:
        """A stranger's connection from loopback address `source`."""
        assert self.hub.listening is not None
        _reader, writer = await asyncio.open_connection(*self.hub.listening, local_addr=(source, 0))
        self.writers.append(writer)
        return writer

    def send(self, writer: asyncio.StreamWriter, count: int, name: str = "b") -> None:
        data = relayed_frames(count, name)
        self.sent += len(data)
        writer.write(data)

    async def warmed(self, sources: list[str]) -> list[asyncio.StreamWriter]:
        """A connection from each of `sources`, warmed up: frames to a name that is not up
        are routed at once (answered `relay not found`), and each connection's TCP window
        grows as a stream's does."""
        writers = [await self.connect(source) for source in sources]
        before = self.relay.not_found
        for writer in writers:
            self.send(writer, 80, "nobody")
        await until(lambda: self.relay.not_found == before + 80 * len(writers), 30)
        return writers

    def all_taken(self) -> bool:
        """Whether every byte the strangers sent was read and routed."""
        read = sum(c._reader.bytes_read for c in self.strangers())
        return read == self.sent and all(not c._frames for c in self.strangers())

    async def release(self) -> None:
        """b reads again: every stranger's frames are routed, their connections read again
        (none is left held), and every byte sent is taken."""
        assert self.to_hub._socket is not None
        self.to_hub._socket.resume_reading()
        await until(self.all_taken, 60)
        assert self.tcp.inbound.held == 0
        assert not any(c._reading_paused for c in self.strangers())


def with_stalled_owner(tmp_path: Path, test: Callable[[StalledOwner], Awaitable[None]]) -> None:
    """Run `test` with a hub and a relayed member b that does not read (`StalledOwner`)."""

    async def main() -> None:
        net: StalledOwner | None = None
        async with hub_and_relayed_b(tmp_path, SETTINGS) as (hub, b):
            try:
                net = StalledOwner(hub, b, stop_reading(b))  # what goes to b waits
                await test(net)
            finally:
                for writer in net.writers if net is not None else ():
                    writer.close()

    asyncio.run(asyncio.wait_for(main(), 90))


async def fill_bs_way(net: StalledOwner, source: str = "127.0.0.1") -> None:
    """A stranger at `source` sends ~24 MiB to /relay/b: b's way fills, then its frames wait."""
    writer = await net.connect(source)
    net.send(writer, 400)
    await until(lambda: any(c._reading_paused for c in net.strangers()), 30)


@pytest.mark.usefixtures("loopback_sources")  # its clients stand for remote hosts
def test_one_source_holds_at_most_its_share_and_one_read_however_many_connections(
    tmp_path: Path,
) -> None:
    """One address's connections together hold at most its share of the routing budget and
    one read past it, not one read per connection (before: ~4.7 MiB of a 1 MiB share); once
    its frames go on, each of its connections reads again."""

    async def test(net: StalledOwner) -> None:
        writers = await net.warmed(["127.0.0.1"] * MORE)
        await fill_bs_way(net)
        for writer in writers:
            net.send(writer, 40)  # ~2.4 MiB each, at once
        await until(lambda: all(c._reading_paused for c in net.strangers()), 10)
        share = net.tcp.settings.routing_per_source
        one_read = net.tcp.settings.large_read_buffer + 64 * QUEUED_FRAME_COST
        held = net.tcp.inbound.held_by("127.0.0.1")
        assert held > share  # the budget is at work: the stranger's frames wait
        assert held <= share + one_read, f"{held} bytes held for a share of {share}"
        await net.release()

    with_stalled_owner(tmp_path, test)


@pytest.mark.usefixtures("loopback_sources")  # its clients stand for remote hosts
def test_past_the_nodes_total_a_connection_reads_a_little_at_a_time(tmp_path: Path) -> None:
    """Budget 2: four addresses pass the node's total (a quarter each); then eight
    others, each within its share, send at once: each reads at most `READ_PAST_ROUTING_TOTAL`
    at a time while the total is passed, so each holds at most that and the frame it
    completed past it (before: one full read each, ~420 KB, ~3.4 MB for the eight)."""

    async def test(net: StalledOwner) -> None:
        others = [f"127.0.0.{10 + n}" for n in range(MORE)]
        writers = await net.warmed(others)
        await fill_bs_way(net, "127.0.0.2")
        for n in range(3, 6):
            net.send(await net.connect(f"127.0.0.{n}"), 40)
        inbound = net.tcp.inbound
        await until(lambda: inbound.held > inbound.total, 10)
        await until(
            lambda: all(c._reading_paused for c in net.strangers() if c.host not in others), 10
        )
        assert inbound.held > inbound.total
        before = inbound.held
        for writer in writers:
            net.send(writer, 40)
        await until(lambda: all(c._reading_paused for c in net.strangers()), 10)
        each = READ_PAST_ROUTING_TOTAL + MAX_TRANSPORT_FRAME + 2 * QUEUED_FRAME_COST
        assert inbound.held - before <= MORE * each, (before, inbound.held)
        await net.release()

    with_stalled_owner(tmp_path, test)


def test_a_source_past_its_share_holds_the_connections_it_opens_then_not_others() -> None:
    """Sans sockets (as tests/test_review53n_queues.py drives the transport): one address's
    connection passes its share; a connection it opens then does not read at all, another
    address's does; once the frames are routed, the held one reads again."""

    async def main() -> None:
        router = Router()
        release = asyncio.Event()

        async def slow(message: RoutedMessage, source: Source | None) -> None:
            await release.wait()

        router.register(SLOW, slow)
        transport = TcpTransport(router, TcpSettings(max_routing_total=TOTAL))
        listener = Listener(frozenset({SLOW}))

        def accept(host: str, port: int) -> tuple[TcpConnection, FakeSocket]:
            connection = TcpConnection(transport, outgoing=False, listener=listener, peer="?")
            socket = FakeSocket(host, port)
            connection.connection_made(socket)
            return connection, socket

        first, first_socket = accept("10.0.0.1", 1000)
        for _ in range(16):
            feed([(first, first_socket, [1])])
        assert first_socket.paused
        assert transport.inbound.source_over("10.0.0.1")
        _later, later_socket = accept("10.0.0.1", 1001)
        assert later_socket.paused  # held from the start: its source is past its share
        _other, other_socket = accept("10.0.0.2", 1000)
        assert not other_socket.paused
        release.set()
        await until(lambda: transport.inbound.held == 0, 10)
        assert not later_socket.paused
        assert not first_socket.paused
        await transport.close()

    asyncio.run(main())
