"""Review 50k, idle 1 (a residual of review 50e, idle 1): a frame a relay owner's connection
sent back through a node to the connection it answers counted as that connection's progress,
so a stranger who knows a live relay name kept a TCP connection to the node from idling out
by sending a valid Noise message 1 through the relay every 59 s: the relay owner's message 2
came back. Fixed: only a relayed answer that is a channel's transport frame (which the relay
owner sends only on a channel that verified the sender) counts; a handshake message does
not. The node tells the transport which byte marks one (`TcpTransport.relayed_progress`,
from troth.channel.packets), so the transport holds no Noise knowledge.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from functools import partial
from pathlib import Path

from tests.test_reconnect import stop_all, tcp_node, ticket, until
from tests.test_review50e_idle import accepted, counters, hub_node
from troth.channel.packets import HANDSHAKE_FRAME
from troth.node.channel_limits import ChannelLimits
from troth.node.channels import LISTENER
from troth.routing import Address, RoutedMessage
from troth.transport import frame

IDLE = 600.0  # the default idle timeout (TcpSettings.idle_timeout)


def message_1() -> bytes:
    """A valid XX message 1 ("-> e", a fresh ephemeral key) in its packet, to relay "b"."""
    packet = struct.pack(">HB", 33, HANDSHAKE_FRAME) + os.urandom(32)
    route = (Address("relay", "b"), LISTENER)
    return frame(RoutedMessage(route, (Address("worker", "me"),), packet).encode())


def test_message_2s_relayed_back_do_not_keep_a_strangers_connection(tmp_path: Path) -> None:
    """A stranger sends a message 1 through b's relay every 59 s; b answers each with a
    message 2 through the hub: the stranger's connection still idles out."""

    async def main() -> None:
        hub = await hub_node(tmp_path)
        assert hub.listening is not None
        at = "/tcp/{}:{}".format(*hub.listening)
        # the strangers b's relay name brings through the hub share half b's half-open
        # handshakes of the hub's source (review 73c, rooms 1): the 11 here, never finished,
        # fit at 32 (8 at the default 16)
        b = await tcp_node(tmp_path, "b", limits=ChannelLimits(max_half_open_per_source=32))
        raw: socket.socket | None = None
        try:
            await b.enroll(ticket(hub, at, **{"troth.relay": "b"}), "b")
            await b.create_relay("b", at)
            known = set(accepted(hub))
            raw = socket.create_connection(hub.listening)
            await until(lambda: len(set(accepted(hub)) - known) == 1)
            (stranger,) = set(accepted(hub)) - known
            start = stranger.liveness.opened_at
            for step in range(1, 12):  # 59 s apart: 649 s in all
                sent = stranger.frames_sent
                raw.sendall(message_1())
                await until(partial(lambda n: stranger.frames_sent > n, sent))  # b's message 2
                stranger._check(start + 59 * step)
                if 59 * step > IDLE:
                    break
                assert counters(hub).closed_idle == 0
            await until(lambda: stranger.closed.is_set())
            assert counters(hub).closed_idle == 1
        finally:
            if raw is not None:
                raw.close()
            await stop_all(b, hub)

    asyncio.run(main())
