"""Review 64e, transport: findings (each test failed before its fix).

Transport 1 (low: a connection and a timer left for good after the transport closed). A
`TcpTransport.connect` under way as `close()` ran (a channel opened to a new address while the
node stopped) finished after it: its connection was admitted into the table `close()` had just
emptied, and it started the sweep timer again, which `close()` had cancelled and which then
rescheduled itself every `sweep_interval` for as long as the loop ran; nothing closed that
connection again (the peer kept it until its own idle timeout), and a connect started after
`close()` opened one just the same. Now `close()` marks the transport closing: a connect under
way, or one started after, fails (`Unreachable`), and no connection is admitted.

Transport 2 (low: connections wasted at the peer, and a handshake left to its timeout). Two
callers that asked for the connection to one `host:port` while it was being made (a node
opening a link, a feed sync and a call to its hub at once) each opened their own: the peer
counted both against this node's per-source cap, and only the last was the one `/tcp/host:port`
named, so when the peer closed the first as it accepted it (at its limits), the lost hook for
`/tcp/host:port` was not called for it, and a handshake whose message 1 went over it waited its
whole timeout (what review 48h, sources 2 fixed for one connection). Now the callers that ask
while a connection is being made wait for that one (one caller cancelled stops no other).

Transport 3 (low: sockets left open at a node's stop). `TcpTransport.close()` closed its
connections one after another, awaiting each one's consumer task once cancelled; a consumer
waits for the routing under way, and one routing that outlasted its cancellation (a handler
that took its `CancelledError` for a failure and went on) held every connection after it open:
the node's stop abandons the stage once past its share (`StopBudget`), and those sockets
stayed. Now every connection is closed at once, and their consumers are awaited together.
"""

from __future__ import annotations

import asyncio

import pytest

from troth.errors import Unreachable
from troth.routing import Address, RoutedMessage, Router, Source
from troth.transport import Listener, TcpSettings, TcpTransport, frame

ECHO = Address("service", "echo")


def test_a_connect_under_way_as_the_transport_closes_leaves_no_connection_or_timer() -> None:
    """Transport 1: the connect is started, the transport closed before it completes; the
    connect fails, the client holds no connection and no sweep timer, and the server's side of
    the socket is gone too."""

    async def main() -> None:
        server = TcpTransport(Router(), TcpSettings())
        host, port = await server.listen("127.0.0.1", 0, Listener(frozenset({ECHO})))
        client = TcpTransport(Router(), TcpSettings())
        try:
            pending = asyncio.ensure_future(client.connect(host, port))
            await asyncio.sleep(0)  # the connect is under way
            await client.close()
            with pytest.raises(Unreachable, match="closed"):
                await pending
            with pytest.raises(Unreachable, match="closed"):
                await client.connect(host, port)  # nor one started after
            assert client.connections() == []
            assert client._sweeper is None
            async with asyncio.timeout(3):
                while server.connections():
                    await asyncio.sleep(0.01)
        finally:
            await client.close()
            await server.close()

    asyncio.run(main())


def test_callers_asking_at_once_for_one_address_share_one_connection() -> None:
    """Transport 2: three connects to one address at once give one connection (the server
    accepts one), and a caller cancelled while it waits leaves the others theirs."""

    async def main() -> None:
        server = TcpTransport(Router(), TcpSettings())
        host, port = await server.listen("127.0.0.1", 0, Listener(frozenset({ECHO})))
        client = TcpTransport(Router(), TcpSettings())
        try:
            first = asyncio.ensure_future(client.connect(host, port))
            await asyncio.sleep(0)
            first.cancel()  # its caller gave up: the connect goes on for the others
            made = await asyncio.gather(client.connect(host, port), client.connect(host, port))
            assert made[0] is made[1]
            assert client.connections() == [made[0]]
            assert await client.connect(host, port) is made[0]
            async with asyncio.timeout(3):
                while not server.counters.accepted:
                    await asyncio.sleep(0.01)
            assert server.counters.accepted == 1  # (the client made one: no other comes)
        finally:
            await client.close()
            await server.close()

    asyncio.run(main())


def test_routings_that_outlast_their_cancellation_hold_no_other_connection_open() -> None:
    """Transport 3: every connection's routing takes its cancellation for a failure and goes on
    until the test lets it end; while `close()` waits for them, every peer already sees its
    connection closed (before: only the first connection `close()` came to)."""

    async def main() -> None:
        router, release, started = Router(), asyncio.Event(), []

        async def stubborn(message: RoutedMessage, source: Source | None) -> None:
            started.append(message)
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                await release.wait()  # (a handler's bug: the routing goes on)

        router.register(ECHO, stubborn)
        server = TcpTransport(router, TcpSettings())
        host, port = await server.listen("127.0.0.1", 0, Listener(frozenset({ECHO})))
        clients = [await asyncio.open_connection(host, port) for _ in range(4)]
        try:
            for _, writer in clients:
                writer.write(frame(RoutedMessage((ECHO,), (), b"x").encode()))
            async with asyncio.timeout(3):
                while len(started) < 4:
                    await asyncio.sleep(0.01)
            closing = asyncio.ensure_future(server.close())
            for reader, _ in clients:
                assert await asyncio.wait_for(reader.read(), 3) == b""
            assert not closing.done()  # (it waits for the routings)
            release.set()
            await asyncio.wait_for(closing, 3)
        finally:
            release.set()
            for _, writer in clients:
                writer.close()
            await server.close()

    asyncio.run(main())
