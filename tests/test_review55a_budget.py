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
from pathlib import Path

from tests.test_reconnect import stop_all, tcp_node, ticket, until
from tests.test_review23b_relay_tcp import start_hub
from tests.test_review53n_queues import SLOW, FakeSocket, feed
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


def test_one_source_holds_at_most_its_share_and_one_read_however_many_connections(
    tmp_path: Path,
) -> None:
    """One address's connections together hold at most its share of the routing budget and
    one read past it, not one read per connection (before: ~4.7 MiB of a 1 MiB share); once
    its frames go on, each of its connections reads again."""

    async def main() -> None:
        hub = await start_hub(tmp_path, SETTINGS)
        assert hub.listening is not None
        assert isinstance(hub.tcp, TcpTransport)
        at = "/tcp/{}:{}".format(*hub.listening)
        b = await tcp_node(tmp_path, "b")
        writers: list[asyncio.StreamWriter] = []
        try:
            await b.enroll(ticket(hub, at, **{"troth.relay": "b"}), "b")
            await b.create_relay("b", at)
            (to_hub,) = b.tcp.connections()
            assert isinstance(to_hub, TcpConnection)
            assert to_hub._socket is not None
            to_hub._socket.pause_reading()  # b reads nothing: what goes to it waits
            before = set(hub.tcp.connections())

            def strangers() -> list[TcpConnection]:
                return [
                    c
                    for c in hub.tcp.connections()
                    if c not in before and isinstance(c, TcpConnection)
                ]

            relay = hub.host.services["relay"]
            assert isinstance(relay, RelayService)
            for _ in range(MORE):  # warmed up first: frames to a name that is not up are
                # routed at once (answered `relay not found`), and the connection's TCP
                # window grows as a stream's does
                _reader, writer = await asyncio.open_connection(*hub.listening)
                writers.append(writer)
                writer.write(relayed_frames(80, "nobody"))
            await until(lambda: relay.not_found == 80 * MORE, 30)
            _reader, first = await asyncio.open_connection(*hub.listening)
            writers.append(first)
            first.write(relayed_frames(400))  # ~24 MiB: fills b's way, then waits
            await until(lambda: len(strangers()) == MORE + 1, 10)

            def relay_taken() -> bool:
                read = sum(c._reader.bytes_read for c in strangers())
                sent = (400 + 40 * MORE) * len(relayed_frames(1))
                sent += 80 * MORE * len(relayed_frames(1, "nobody"))
                return read == sent and all(not c._frames for c in strangers())

            await until(lambda: any(c._reading_paused for c in strangers()), 30)
            for writer in writers[:MORE]:
                writer.write(relayed_frames(40))  # ~2.4 MiB each, at once
            await until(lambda: all(c._reading_paused for c in strangers()), 10)
            host = strangers()[0].host
            share = hub.tcp.settings.routing_per_source
            one_read = hub.tcp.settings.large_read_buffer + 64 * QUEUED_FRAME_COST
            held = hub.tcp.inbound.held_by(host)
            assert held > share  # the budget is at work: the stranger's frames wait
            assert held <= share + one_read, f"{held} bytes held for a share of {share}"
            # b reads again: the source's frames are routed, its connections read again (all
            # of them: none is left held), and every byte sent is taken
            to_hub._socket.resume_reading()
            await until(lambda: relay_taken(), 60)
            assert hub.tcp.inbound.held_by(host) == 0
            assert not any(c._reading_paused for c in strangers())
        finally:
            for writer in writers:
                writer.close()
            await stop_all(b, hub)

    asyncio.run(asyncio.wait_for(main(), 90))


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
