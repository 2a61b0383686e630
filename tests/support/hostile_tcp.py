"""A hub node in this process, listening on loopback TCP with the limits a test sets, and raw
attacker sockets bound to loopback addresses of their own (Linux routes 127.0.0.0/8 to the
loopback interface): what the review 57c attacks on the listener and the transport start from
(tests/test_review57c_*.py). State is measured by counting what the node keeps, not timed."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

from tests.test_reconnect import stop_all
from troth.node import init_node, open_node
from troth.node.channel_limits import ChannelLimits
from troth.node.runtime import NodeRuntime
from troth.routing import Router
from troth.transport import FrameReader, TcpSettings, TcpTransport
from troth.transport.tcp import TcpConnection


@contextlib.asynccontextmanager
async def hostile_hub(
    home: Path, settings: TcpSettings | None = None, limits: ChannelLimits | None = None
) -> AsyncIterator[NodeRuntime]:
    """A hub (hosts an authority, so it admits any authenticated identity: strangers) whose TCP
    transport has `settings` and whose channels `limits`, listening on 127.0.0.1; stopped
    after."""

    def transport(router: Router) -> TcpTransport:
        return TcpTransport(router, settings=settings or TcpSettings())

    init_node("hub", home=home)
    node = open_node("hub", home=home)
    node.create_authority("hub", now=int(time.time()))
    hub = NodeRuntime(node, transport=transport, limits=limits or ChannelLimits())
    await hub.start(("127.0.0.1", 0))
    try:
        yield hub
    finally:
        await stop_all(hub)


def tcp_of(hub: NodeRuntime) -> TcpTransport:
    """The hub's TCP transport."""
    assert isinstance(hub.tcp, TcpTransport)
    return hub.tcp


def accepted(hub: NodeRuntime) -> list[TcpConnection]:
    """The connections the hub accepted that are open now."""
    return [c for c in tcp_of(hub).connections() if not c.outgoing]


def raw(hub: NodeRuntime, source: str) -> socket.socket:
    """A blocking TCP connection to the hub's listener from loopback address `source`."""
    assert hub.listening is not None
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.bind((source, 0))
    sock.connect(hub.listening)
    return sock


async def frames_from(sock: socket.socket, count: int, timeout: float = 5.0) -> list[bytes]:
    """Read `count` frames the hub sends on `sock` (fewer if it closes or `timeout` passes)."""
    reader, frames = FrameReader(), list[bytes]()
    deadline = time.monotonic() + timeout

    def read() -> bytes:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            return sock.recv(1 << 16)
        except (TimeoutError, ConnectionError):
            return b""

    while len(frames) < count and time.monotonic() < deadline:
        data = await asyncio.to_thread(read)
        if not data:
            break
        frames += reader.feed(data, time.monotonic())
    return frames


def kept_state(hub: NodeRuntime) -> dict[str, int]:
    """The sizes of every per-connection, per-source and per-channel table the hub's transport
    and channel manager keep (each 0 once no connection is open and no channel lives)."""
    tcp, channels = tcp_of(hub), hub.channels
    tables = {
        "connections": tcp._all,
        "accepted": tcp._accepted,
        "per_host": tcp._per_host,
        "per_network": tcp._per_network,
        "queued_by_source": tcp._queued_by_source,
        "held_sources": tcp.holds._by_host,
        "routing_by_source": tcp.inbound._by_source,
        "write_budget": tcp.budget._held,
        "ends": channels.ends,
        "half_open": channels._half_open,
        "half_open_networks": channels._networks,
        "channels_per_source": channels._per_source,
        "ends_over": channels._over,
        "budgets": channels._budgets,
        "users": channels._users,
    }
    state = {name: len(table) for name, table in tables.items()}
    state["routing_bytes"] = tcp.inbound.held
    state["queued_bytes"] = tcp.queued_bytes
    return state


def live_connections() -> int:
    """TCP connection objects still alive in this process (after a collection)."""
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, TcpConnection))
