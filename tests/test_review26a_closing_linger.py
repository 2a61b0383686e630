"""Review 26a, TCP queue 3: a connection the node closes with frames still unsent lingers,
uncounted and with no timeout, while its peer takes them slowly (docs/protocols.md, "TCP
transport": "one that does not drain for `write_timeout` is dropped").

`close()` writes the queue into the socket's buffer and closes it: asyncio keeps the socket
(its descriptor) until that buffer is sent, and the connection is forgotten at once (no longer
counted against the connection caps, nor swept). The write timer, if it runs, stops at the
next `resume_writing` (the buffer drained to a quarter), and nothing starts it again: a peer
that reads until then and stops (keeping its TCP window shut, which its kernel answers
forever) holds the descriptor and the rest of the buffer for good. Each connection the node
closes this way (its keepalive found the peer silent: `NodeRuntime._drop_connection`) is one
more, outside every cap. Fix: a closed connection that has not finished writing within
`write_timeout` is aborted (a timer of its own, which `resume_writing` does not stop)."""

from __future__ import annotations

import asyncio
import socket

from tests.test_transport_tcp import until
from tests.test_transport_tcp_queue import NARROW, accepted, narrow_server_side, run
from troth.routing import RoutedMessage
from troth.transport import TcpSettings, TcpTransport
from troth.transport.tcp import TcpConnection


def test_a_closed_connection_its_peer_stops_reading_is_dropped() -> None:
    """The node sends 3 MB to a peer and closes the connection; the peer reads until the
    node's write buffer drains to a quarter, then reads nothing more. Within a few write
    timeouts the connection is gone (its socket closed)."""
    settings = TcpSettings(write_timeout=0.5, first_frame_timeout=60.0)  # a 1 MiB buffer

    async def test(transport: TcpTransport, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, NARROW)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1000)  # the window opens finely
        raw.setblocking(False)
        await loop.sock_connect(raw, (host, port))
        known: set[TcpConnection] = set()
        peer = await accepted(transport, known)
        narrow_server_side(peer)
        socket_of = peer._socket
        assert socket_of is not None
        sends = [
            asyncio.ensure_future(peer.send(RoutedMessage((), (), bytes(30_000))))
            for _ in range(100)
        ]
        await until(lambda: not peer._writable)
        await peer.close()  # (what `_drop_connection` does)
        while not peer._writable:  # read until the node's buffer drained to a quarter
            await asyncio.wait_for(loop.sock_recv(raw, 4096), 5)
        assert socket_of.get_write_buffer_size() > 0  # left: the peer reads no more
        await until(lambda: socket_of.is_closing() and peer._socket is None, timeout=5)
        await asyncio.gather(*sends, return_exceptions=True)
        raw.close()

    run(test, settings)
