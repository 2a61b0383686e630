"""A hub over TCP on loopback and b, a member without a listening port behind the hub's relay
(`/relay/b`): what the real-node relay tests start from (tests/test_review55a_*.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from tests.test_reconnect import stop_all, tcp_node, ticket
from tests.test_review23b_relay_tcp import start_hub
from troth.node.runtime import NodeRuntime
from troth.transport.settings import TcpSettings
from troth.transport.tcp import TcpConnection


@contextlib.asynccontextmanager
async def hub_and_relayed_b(
    home: Path, settings: TcpSettings
) -> AsyncIterator[tuple[NodeRuntime, NodeRuntime]]:
    """(hub, b): the hub's TCP transport with `settings`, b enrolled there holding `/relay/b`;
    both stopped after."""
    hub = await start_hub(home, settings)
    assert hub.listening is not None
    at = "/tcp/{}:{}".format(*hub.listening)
    b = await tcp_node(home, "b")
    try:
        await b.enroll(ticket(hub, at, **{"troth.relay": "b"}), "b")
        await b.create_relay("b", at)
        yield hub, b
    finally:
        await stop_all(b, hub)


def stop_reading(node: NodeRuntime) -> TcpConnection:
    """`node`'s one connection (to its hub), which reads nothing from now on."""
    (connection,) = node.tcp.connections()
    assert isinstance(connection, TcpConnection)
    assert connection._socket is not None
    connection._socket.pause_reading()
    return connection
