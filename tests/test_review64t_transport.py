"""Review 64t, transport: attacks on the lead's transport 1 (session 64: a close's linger
timer replaced the write timer, so a stuck peer closed on a busy loop was dropped and counted
once, not twice).

transport 1 (low; fixed, `TcpConnection.close`, `_not_reading`, `_linger_over`): the close
  cancelled the write timer and started the linger timer anew, `write_timeout` from the close,
  so a peer that had not drained its buffer for almost `write_timeout` when the node closed
  its connection (a channel closed, the node stopping, a connection dropped as idle) was given
  a whole `write_timeout` more: not dropped at its write timer's deadline, as
  docs/protocols.md ("TCP transport") promises, but up to twice as late, its buffer and the
  queue the close wrote into it held all that while. Now the write timer stands through the
  close (the close starts the linger beside it), and whichever drops the peer first cancels
  the other: dropped at the earlier deadline, counted once (the lead's busy-loop test still
  passes).
"""

from __future__ import annotations

import asyncio
import socket

from tests.test_review64e_refuted import SINK, serve, until
from troth.routing import RoutedMessage
from troth.transport import TcpSettings, TcpTransport, frame
from troth.transport.tcp_connection import TcpConnection


def stuck_peer(port: int) -> socket.socket:
    """A client that sends one frame and never reads."""
    stuck = socket.create_connection(("127.0.0.1", port))
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(frame(RoutedMessage((SINK,), (), b"hello").encode()))
    return stuck


async def fill(connection: TcpConnection, arrived: list[RoutedMessage]) -> None:
    """Past the kernel's buffers and the write buffer's limit: the write timer starts."""
    filler = RoutedMessage(arrived[0].return_route, (), bytes(60_000))
    for _ in range(200):
        connection._socket.write(frame(filler.encode()))  # type: ignore[union-attr]
    await until(lambda: connection._write_timer is not None)


def deadline(connection: TcpConnection) -> float:
    """When the first timer that drops the peer comes due (the loop's clock)."""
    timers = (connection._write_timer, connection._linger)
    return min(t.when() for t in timers if t is not None and not t.cancelled())


def test_a_peer_not_reading_closed_late_in_its_write_timeout_is_dropped_on_time() -> None:
    """transport 1: the close comes half way through the write timeout: the peer is still
    dropped at its write timer's deadline, and counted once."""

    async def test(transport: TcpTransport, port: int, arrived: list[RoutedMessage]) -> None:
        stuck = stuck_peer(port)
        await until(lambda: len(arrived) == 1)
        (connection,) = transport.connections()
        await fill(connection, arrived)
        due = connection._write_timer.when()  # type: ignore[union-attr]
        await asyncio.sleep(0.2)  # half of the write timeout gone
        await connection.close()
        assert deadline(connection) <= due
        await until(lambda: connection.buffered() == 0)
        await asyncio.sleep(0.05)
        assert transport.counters.closed_not_reading == 1
        stuck.close()

    serve(test, TcpSettings(write_timeout=0.4))
