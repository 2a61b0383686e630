"""A TCP transport driven sans sockets whose accepted connections' frames wait for a slow
worker (tests/test_review53n_queues.py's fake socket): what tests of a source held past its share
of the routing budget start from (troth.transport.holds; tests/test_review55k_*.py)."""

from __future__ import annotations

import asyncio

from tests.test_review53n_queues import SLOW, FakeSocket, feed
from troth.routing import RoutedMessage, Router, Source
from troth.transport import Listener, TcpSettings, TcpTransport
from troth.transport.tcp import TcpConnection

TOTAL = 4 << 20
"""The transport's max_routing_total: a source's share is 1 MiB."""


class HeldSources:
    """The transport (`SLOW` frames wait until `release` is set) and its fake accepted
    connections."""

    def __init__(self) -> None:
        router = Router()
        self.release = asyncio.Event()

        async def slow(message: RoutedMessage, source: Source | None) -> None:
            await self.release.wait()

        router.register(SLOW, slow)
        self.settings = TcpSettings(max_routing_total=TOTAL)
        self.transport = TcpTransport(router, self.settings)
        self.listener = Listener(frozenset({SLOW}))

    def accept(self, host: str, port: int) -> tuple[TcpConnection, FakeSocket]:
        """A connection from `host`:`port`, accepted."""
        connection = TcpConnection(self.transport, outgoing=False, listener=self.listener, peer="?")
        socket = FakeSocket(host, port)
        connection.connection_made(socket)
        return connection, socket

    def over_share(self, host: str, port: int = 1000) -> tuple[TcpConnection, FakeSocket]:
        """A connection from `host` whose frames, waiting, pass its share."""
        connection, socket = self.accept(host, port)
        for _ in range(16):
            feed([(connection, socket, [1])])
        assert self.transport.inbound.source_over(host)
        return connection, socket
