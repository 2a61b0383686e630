"""Review 53o, queues 1: the node-wide routing budget (review 53n, `TcpSettings.
max_routing_total`) counted every connection's waiting frames together, the node's own outgoing
connections (to its hub, its configured peers: connections it dialled) among them, so strangers
holding the node-wide total over it paused the node's uplink whenever it held a frame. Now the
node's own connections have a reserved share of their own (`TcpSettings.routing_outgoing`, a
quarter of the total, as a source's), not counted in the accepted connections' total
(docs/protocols.md, "TCP transport").

In one process, sans sockets, as tests/test_review53n_queues.py drives the transport."""

from __future__ import annotations

import asyncio

from tests.test_review53n_queues import SLOW, FakeSocket, feed, strangers_over_the_total
from troth.routing import RoutedMessage, Router, Source
from troth.transport import TcpSettings, TcpTransport
from troth.transport.tcp import TcpConnection


def test_strangers_over_the_total_do_not_pause_the_nodes_own_connection() -> None:
    """Accepted connections from eight addresses hold the node-wide total over its bound; the
    node's own connection to its hub (outgoing) brings frames that wait too: it keeps reading
    (before, it paused with the strangers' connections)."""

    async def main() -> None:
        transport, never, _listener = await strangers_over_the_total()
        hub = TcpConnection(transport, outgoing=True, listener=None, peer="10.9.9.9:4000")
        socket = FakeSocket("10.9.9.9", 4000)
        hub.connection_made(socket)
        await asyncio.sleep(0)
        feed([(hub, socket, [3])])
        feed([(hub, socket, [2])])
        assert hub._frames  # frames wait: the budget applies to it
        assert not socket.paused
        assert transport.inbound.held_own > 0
        never.set()
        await transport.close()
        assert transport.inbound.held == transport.inbound.held_own == 0

    asyncio.run(main())


def test_the_nodes_own_connections_are_bounded_by_their_reserved_share() -> None:
    """The node's own connections alone hold past their share (a quarter of the total): the
    one whose frame passed it pauses, as an accepted connection past its source's share."""

    async def main() -> None:
        router = Router()
        never = asyncio.Event()

        async def slow(message: RoutedMessage, source: Source | None) -> None:
            await never.wait()

        router.register(SLOW, slow)
        transport = TcpTransport(router, TcpSettings(max_routing_total=4 << 20))
        assert transport.settings.routing_outgoing == 1 << 20
        hub = TcpConnection(transport, outgoing=True, listener=None, peer="10.9.9.9:4000")
        socket = FakeSocket("10.9.9.9", 4000)
        hub.connection_made(socket)
        await asyncio.sleep(0)
        for _ in range(16):
            feed([(hub, socket, [1])])
        assert socket.paused
        assert 1 << 20 < transport.inbound.held_own <= (1 << 20) + (256 << 10)
        assert transport.inbound.held == 0  # not the accepted connections' total
        never.set()
        await transport.close()

    asyncio.run(main())
