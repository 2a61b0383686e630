"""Lead's findings in session 64.

transport 1 (low): a connection closed while its peer was not reading kept its write timer
  beside the close's linger timer; on a busy loop both came due in one pass, so the peer was
  dropped twice and `closed_not_reading` counted it twice (seen as a flaky count in review
  64e's refuted test under load). The close's timer now replaces the write timer (review
  64t, transport 1: the write timer stands through the close, whichever of the two drops the
  peer first cancels the other, so a close no longer gives the peer a whole write timeout more).
"""

from __future__ import annotations

import asyncio
import socket
import time

from tests.test_review64e_refuted import SINK, serve, until
from troth.routing import RoutedMessage
from troth.transport import TcpSettings, TcpTransport, frame


def test_a_peer_not_reading_when_closed_on_a_busy_loop_is_dropped_once() -> None:
    """transport 1: the loop blocked past both timers right after the close (as a loaded
    machine does): the stuck peer is dropped once, counted once."""

    async def test(transport: TcpTransport, port: int, arrived: list[RoutedMessage]) -> None:
        stuck = socket.create_connection(("127.0.0.1", port))
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.sendall(frame(RoutedMessage((SINK,), (), b"hello").encode()))
        await until(lambda: len(arrived) == 1)
        (connection,) = transport.connections()
        filler = RoutedMessage(arrived[0].return_route, (), bytes(60_000))
        for _ in range(200):  # past the kernel's buffers: the write timer starts
            connection._socket.write(frame(filler.encode()))  # type: ignore[union-attr]
        assert connection.buffered() > 0
        await transport.close()
        time.sleep(0.25)  # the loop held past both timers' deadlines (0.2 s each)
        await until(lambda: connection.buffered() == 0)
        await asyncio.sleep(0.05)  # any second timer due in the same pass has run
        assert transport.counters.closed_not_reading == 1
        stuck.close()

    serve(test, TcpSettings(write_timeout=0.2))
