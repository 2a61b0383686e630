"""Review 23b (a node under hostile peers: a relay over TCP, where TCP is the point).

1. a relay node routes what arrives on a connection in order, and a frame whose next hop is a
   connection that does not read waits for it (up to the write timeout, 10 s; then that
   connection is dropped) before the frames behind it move (docs/protocols.md, "TCP
   transport"). Every frame a relayed node b sends — its answers to every peer, its own
   channel to the hub — arrives on its one connection to the hub. So one member of b's
   authority reaches b through the relay, asks b for a few large echoes and stops reading its
   own connection: once the hub's write buffer to it is full, b's connection is frozen at the
   hub for the write timeout, every other peer of b unanswered meanwhile (its link to the hub
   too: a few such readers in turn outlast b's keepalive). The residual in "Load limits"
   counts what such frames hold (64 x 128 KiB), not that they hold back every relayed channel.
   Fixed: a frame for a connection whose write buffer is full waits in that connection's queue
   at the hub (bounded: 1 MiB per connection, 64 MiB for all), and the connection it came from
   goes on routing; past the bound its sender waits while the peer reads (a bulk stream to a
   slow reader keeps its backpressure), and once the peer has taken (next to) nothing for the
   stall timeout (2 s) its queue and every frame for it are dropped, counted
   (tests/test_transport_tcp_queue.py).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.test_reconnect import stop_all, tcp_node, ticket, until
from troth.node import init_node, open_node
from troth.node.runtime import NodeRuntime
from troth.node.services import call
from troth.node.services.relay import RelayService
from troth.routing import Address, RoutedMessage, Router, parse_route
from troth.transport import TcpTransport, frame
from troth.transport.settings import TcpSettings
from troth.transport.tcp import TcpConnection

ECHO = Address("service", "echo")
LARGE = 900_000  # bytes each echo request carries (and its answer)


async def start_hub(home: Path, settings: TcpSettings) -> NodeRuntime:
    """A hub node listening on loopback, its TCP transport with `settings`."""

    def hub_transport(router: Router) -> TcpTransport:
        return TcpTransport(router, settings=settings)

    init_node("hub", home=home)
    node = open_node("hub", home=home)
    node.create_authority("hub", now=int(time.time()))
    hub = NodeRuntime(node, transport=hub_transport)
    await hub.start(("127.0.0.1", 0))
    return hub


def test_a_reader_that_stalls_holds_back_no_other_peer_of_a_relayed_node(tmp_path: Path) -> None:
    """m, a member, opens a channel to b through the hub's relay, stops reading its
    connection to the hub and asks b for twelve 900 KB echoes. Meanwhile a, another member,
    echoes through the relay to b: answered within its call's 3 s (the hub's write timeout,
    20 s here, is what a stalled reader holds a connection for)."""

    async def main() -> None:
        hub = await start_hub(tmp_path, TcpSettings(write_timeout=20.0))
        assert hub.listening is not None
        at = "/tcp/{}:{}".format(*hub.listening)
        b, a, m = [await tcp_node(tmp_path, name) for name in ("b", "a", "m")]
        flood: list[asyncio.Future[object]] = []
        try:
            await b.enroll(ticket(hub, at, **{"troth.relay": "b"}), "b")
            await b.create_relay("b", at)
            await a.enroll(ticket(hub, at), "a")
            await m.enroll(ticket(hub, at), "m")
            to_b = parse_route(f"{at}/relay/b")
            assert await a.send_message(f"{at}/relay/b/service/echo", "up") == "up"

            end = await m.channel_to(to_b)
            (mine,) = m.tcp.connections()
            assert isinstance(mine, TcpConnection)
            socket = mine._socket
            assert socket is not None
            socket.pause_reading()  # m reads nothing from now on
            text = "x" * LARGE
            flood += [
                asyncio.ensure_future(call(m.router, (end.enc, ECHO), "echo", text, timeout=30))
                for _ in range(12)
            ]
            # b answers; the hub's buffers to m fill up until its writes to m wait
            stalled = [c for c in hub.tcp.connections() if isinstance(c, TcpConnection)]
            await until(lambda: any(not c._writable for c in stalled), 8)
            theirs = await a.channel_to(to_b)
            answer = await call(a.router, (theirs.enc, ECHO), "echo", "still", timeout=3)
            assert answer == "still"
        finally:
            for waiting in flood:
                waiting.cancel()
            await asyncio.gather(*flood, return_exceptions=True)
            await stop_all(m, a, b, hub)

    asyncio.run(asyncio.wait_for(main(), 60))


def test_frames_relayed_to_an_owner_that_stalls_are_dropped_not_answered_not_found(
    tmp_path: Path,
) -> None:
    """b, a relayed node, stops reading its connection to the hub; a peer sends 10 MB to
    /relay/b. Past b's queue at the hub they are dropped (Congested, counted), and the hub
    does not answer them `relay not found`: b's relay is up, only b does not read."""

    async def main() -> None:
        hub = await start_hub(tmp_path, TcpSettings(stall_timeout=0.5, write_timeout=30.0))
        assert hub.listening is not None
        at = "/tcp/{}:{}".format(*hub.listening)
        b = await tcp_node(tmp_path, "b")
        try:
            await b.enroll(ticket(hub, at, **{"troth.relay": "b"}), "b")
            await b.create_relay("b", at)
            (to_hub,) = b.tcp.connections()
            assert isinstance(to_hub, TcpConnection)
            assert to_hub._socket is not None
            to_hub._socket.pause_reading()  # b reads nothing from now on
            _reader, writer = await asyncio.open_connection(*hub.listening)
            onward = parse_route("/relay/b/service/channels")
            back = parse_route("/worker/probe-1")
            junk = RoutedMessage(onward, back, bytes(120_000)).encode()
            for _ in range(80):
                writer.write(frame(junk))
            await writer.drain()
            counters = hub.tcp.counters if isinstance(hub.tcp, TcpTransport) else None
            assert counters is not None
            await until(lambda: counters.dropped_stalled > 0)
            relay = hub.host.services["relay"]
            assert isinstance(relay, RelayService)
            assert relay.not_found == 0
            assert hub.status()["services"]["relay"]["b"]["state"] == "up"
            writer.close()
        finally:
            await stop_all(b, hub)

    asyncio.run(asyncio.wait_for(main(), 60))
