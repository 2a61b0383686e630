"""Review 50e, idle 1: a junk frame every 59 s kept a node's TCP connection from idling out.

The transport's sweep reset a connection's idle clock on any complete frame, either way, so a
frame the node could not use (undecodable, unauthenticated, to a relay that is not up) every
59 s held the connection open for good, and kept it from being evicted as idle
(`evict_idle_after`, 60 s): one connection from each of ~1,024 networks held every slot of
the table (docs/protocols.md, "TCP transport", the idle limit). Fixed: at a node
(`TcpTransport.authenticated_idle`) only authenticated progress resets the clock — a
handshake step that verified the peer, a transport frame that authenticated, or a frame a
relay owner's connection sent back through this node to the connection (what an end to end
channel through the relay answers) — and junk does not.

The sweep's check takes the time (`TcpConnection._check(now)`): these tests pass it, no
waiting on the clock.
"""

from __future__ import annotations

import asyncio
import socket
import time
from functools import partial
from pathlib import Path

from tests.test_reconnect import stop_all, tcp_node, ticket, until
from troth.node import init_node, open_node
from troth.node.channels import LISTENER
from troth.node.runtime import NodeRuntime
from troth.routing import Address, RoutedMessage, Router
from troth.transport import TcpTransport, frame
from troth.transport.settings import TcpCounters, TcpSettings
from troth.transport.tcp import TcpConnection

IDLE = 600.0  # the default idle timeout (TcpSettings.idle_timeout)


async def hub_node(home: Path) -> NodeRuntime:
    init_node("hub", home=home)
    node = open_node("hub", home=home)
    node.create_authority("hub", now=int(time.time()))
    hub = NodeRuntime(node)
    await hub.start(("127.0.0.1", 0))
    return hub


def accepted(hub: NodeRuntime) -> list[TcpConnection]:
    transport = hub.tcp
    assert isinstance(transport, TcpTransport)
    return [c for c in transport.connections() if not c.outgoing]


def counters(hub: NodeRuntime) -> TcpCounters:
    assert isinstance(hub.tcp, TcpTransport)
    return hub.tcp.counters


JUNK = (
    frame(RoutedMessage((LISTENER,), (), b"\x00junk that is no handshake" * 4).encode()),
    frame(RoutedMessage((Address("relay", "nobody"),), (), b"x" * 64).encode()),  # answered
)


def test_junk_frames_do_not_keep_a_connection_from_idling_out(tmp_path: Path) -> None:
    """A peer sends junk (a message 1 that does not decode; a message to a relay that is not
    up, which the node answers with a route error) every 59 s: the connection is closed once
    idle for the idle timeout, counted from when it opened."""

    async def main() -> None:
        hub = await hub_node(tmp_path)
        assert hub.listening is not None
        raw = socket.create_connection(hub.listening)
        try:
            await until(lambda: len(accepted(hub)) == 1)
            (connection,) = accepted(hub)
            start = connection.liveness.opened_at
            transport = hub.tcp
            assert isinstance(transport, TcpTransport)
            for step in range(1, 12):  # 59 s apart: 649 s in all
                sent = connection.frames_sent
                raw.sendall(JUNK[step % 2])
                await until(partial(lambda n: connection.frames_read == n, step))
                if step % 2 == 1:  # the route error it answers with
                    await until(partial(lambda n: connection.frames_sent > n, sent))
                connection._check(start + 59 * step)
                if 59 * step > IDLE:
                    break
                assert transport.counters.closed_idle == 0
            await until(lambda: connection.closed.is_set())
            assert transport.counters.closed_idle == 1
        finally:
            raw.close()
            await stop_all(hub)

    asyncio.run(main())


def test_a_channel_keeps_its_connection_and_a_relayed_one_its_own(tmp_path: Path) -> None:
    """What does count: b's authenticated messages to the hub keep its connection there from
    idling out; a's, which only carries a's end to end channel with b through the hub's relay
    once a enrolled, is kept by b's answers (the hub cannot read them)."""

    async def main() -> None:
        hub = await hub_node(tmp_path)
        assert hub.listening is not None
        at = "/tcp/{}:{}".format(*hub.listening)
        b = await tcp_node(tmp_path, "b")
        a = await tcp_node(tmp_path, "a")
        try:
            await b.enroll(ticket(hub, at, **{"troth.relay": "b"}), "b")
            await b.create_relay("b", at)
            await a.enroll(ticket(hub, at), "a")  # (over a channel to the hub: it goes on)
            await a.send_message(f"{at}/relay/b/service/echo", "up")
            b_side, a_side = sorted(accepted(hub), key=lambda c: c.liveness.opened_at)
            start = a_side.liveness.opened_at
            for c in (a_side, b_side):
                c._check(start + 1)  # both made progress since they opened
            assert await a.send_message(f"{at}/relay/b/service/echo", "again") == "again"
            assert await b.send_message(f"{at}/service/echo", "hub") == "hub"
            for c in (a_side, b_side):
                c._check(start + 500)
            for c in (a_side, b_side):
                c._check(start + 1000)  # 500 s idle: open
            assert counters(hub).closed_idle == 0
            for c in (a_side, b_side):
                c._check(start + 1101)
            await until(lambda: a_side.closed.is_set() and b_side.closed.is_set())
            assert counters(hub).closed_idle == 2
        finally:
            await stop_all(a, b, hub)

    asyncio.run(main())


def test_at_the_cap_a_connection_that_brought_only_junk_is_evicted_first(
    tmp_path: Path,
) -> None:
    """Review 50e, idle 2: at the connection cap a newcomer evicts a connection that brought no
    frame yet; one junk frame made a connection "active", evictable only once idle for
    `evict_idle_after` (60 s), so a party reconnecting every 59 s from as many networks as
    the table holds kept every newcomer out. At a node, one that made no progress yet is
    evicted as one that brought no frame (oldest first, of the source holding the most)."""

    def capped(router: Router) -> TcpTransport:
        return TcpTransport(router, settings=TcpSettings(max_connections=2))

    async def main() -> None:
        init_node("hub", home=tmp_path)
        hub = NodeRuntime(open_node("hub", home=tmp_path), transport=capped)
        await hub.start(("127.0.0.1", 0))
        assert hub.listening is not None
        raws: list[socket.socket] = []
        try:
            for source in ("127.0.0.1", "127.0.0.2"):
                raw = socket.create_connection(hub.listening, source_address=(source, 0))
                raws.append(raw)
                raw.sendall(JUNK[0])
                read = partial(lambda n: sum(c.frames_read for c in accepted(hub)) == n, len(raws))
                await until(read)
            first = min(accepted(hub), key=lambda c: c.liveness.opened_at)
            raws.append(socket.create_connection(hub.listening, source_address=("127.0.0.3", 0)))
            await until(lambda: counters(hub).evicted + counters(hub).refused_over_limit == 1)
            assert counters(hub).evicted == 1
            await until(lambda: first.closed.is_set())
        finally:
            for raw in raws:
                raw.close()
            await stop_all(hub)

    asyncio.run(main())
