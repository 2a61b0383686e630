"""Review 64e, transport: findings (each test failed before its fix).

Transport 1 (low: a connection and a timer left for good after the transport closed). A
`TcpTransport.connect` under way as `close()` ran (a channel opened to a new address while the
node stopped) finished after it: its connection was admitted into the table `close()` had just
emptied, and it started the sweep timer again, which `close()` had cancelled and which then
rescheduled itself every `sweep_interval` for as long as the loop ran; nothing closed that
connection again (the peer kept it until its own idle timeout), and a connect started after
`close()` opened one just the same. Now `close()` marks the transport closing: a connect under
way, or one started after, fails (`Unreachable`), and no connection is admitted.
"""

from __future__ import annotations

import asyncio

import pytest

from troth.errors import Unreachable
from troth.routing import Address, Router
from troth.transport import Listener, TcpSettings, TcpTransport

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
