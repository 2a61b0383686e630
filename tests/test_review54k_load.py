"""Review 54k, channels 1, on a real node (issue 8; docs/protocols.md, "Load limits"): strangers
fill the node's cap on open channels over loopback TCP, and a member of the node's authority
still opens a new channel and gets an echo answer within 1 s (the places kept for members)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from tests.support.load import (
    LIVENESS,
    MiB,
    Nodes,
    Stranger,
    echo_route,
    hub_and_member,
    nodes_fixture,  # noqa: F401  (the fixture `nodes`)
    timed_echo,
)
from troth.node.channels import ChannelEnd
from troth.routing import Router
from troth.transport import TcpSettings, TcpTransport

pytestmark = [
    pytest.mark.load,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and 127/8"),
]

CAP = 16
"""The hub's cap on open channels peers opened (set through the environment): strangers 12."""


def test_strangers_fill_the_channel_cap_and_a_member_still_gets_an_echo(nodes: Nodes) -> None:
    """Four strangers (a node hosting an authority admits any authenticated identity) open 8
    channels each, 32 in all, twice the cap: the hub keeps at most 12 of them open (the rest
    closed as newer ones took their places: each told with a CLOSE), and member `a` opens a
    new channel and gets an echo answer within 1 s while they are held."""
    environment = {"TROTH_CHANNELS_MAX_OPEN_CHANNELS": str(CAP)}
    net = hub_and_member(nodes, environment=environment)
    before = net.hub.rss()

    async def attack() -> tuple[int, float]:
        router = Router()
        tcp = TcpTransport(router, TcpSettings())
        strangers = [Stranger(router) for _ in range(4)]
        ends: list[ChannelEnd] = []
        try:
            for _ in range(8):
                for stranger in strangers:
                    ends.append(await stranger.open(net.hub))
            async with asyncio.timeout(10):  # the CLOSEs of those that gave way arrive
                while sum(not end.channel.closed for end in ends) > CAP - CAP // 4:
                    await asyncio.sleep(0.05)
            held = [end for end in ends if not end.channel.closed]
            seconds = await asyncio.to_thread(timed_echo, echo_route(net.hub.address))
            still = [await strangers[0].still_open(end) for end in held[-2:]]
            assert all(still), still  # the strangers' places are still theirs
            return len(held), seconds
        finally:
            for stranger in strangers:
                await stranger.manager.close_all()
            await tcp.close()

    held, seconds = asyncio.run(attack())
    assert held == CAP - CAP // 4
    assert seconds < LIVENESS
    assert net.hub.rss() - before < 16 * MiB
