"""Review 49b: attacks on the no-route notice (docs/protocols.md, "Unanswered channels";
troth.node.no_route) that failed: the code was right. Only the node at the other end of a
channel's first hop, over its own authenticated channel, closes it so; nothing else does."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from tests.support.nodes import MemNet, run_memnet
from tests.test_reconnect_restarted_member import TO_B, B, relayed_b
from troth.errors import TrothError
from troth.node.channel_ends import ChannelEnd
from troth.node.runtime import NodeRuntime
from troth.routing import Address, RoutedMessage
from troth.routing.notice import NOTICE_SERVICE, no_route


async def a_and_b(net: MemNet) -> tuple[NodeRuntime, NodeRuntime, ChannelEnd]:
    """a, the relayed b (live), and a's open channel to b."""
    await relayed_b(net)
    b = net.runtimes[-1]
    a = await net.member("a")
    assert await a.send_message(TO_B, "before") == "before"
    return a, b, await a.channel_to(B)


async def still_open(a: NodeRuntime, end: ChannelEnd) -> None:
    await asyncio.sleep(0.2)  # room for a notice to be handled (none must close it)
    assert not end.channel.closed
    assert a.channels.counters.closed_by_no_route == 0
    assert await a.channel_to(B) is end
    assert await a.send_message(TO_B, "after") == "after"


def test_a_notice_from_the_peer_past_the_hub_closes_nothing(tmp_path: Path) -> None:
    """b, authenticated but past the hub, sends a's channel a notice naming it exactly: b is
    not at the other end of a's connection (not the node that could drop its packets)."""

    async def test(net: MemNet) -> None:
        a, b, end = await a_and_b(net)
        (theirs,) = [e for e in b.channels.ends.values() if not e.channel.initiator]  # a's
        notice = no_route(end.peer_route[1:2], (end.dec,))
        await b.router.route(RoutedMessage((theirs.enc, NOTICE_SERVICE), (), notice))
        await still_open(a, end)

    run_memnet(test, tmp_path)


def test_a_notice_from_the_hub_naming_another_hop_closes_nothing(tmp_path: Path) -> None:
    """The hub's own notice names a's channel but a dead address that is not its next hop
    there: a drops it (the hub said nothing of that channel's way)."""

    async def test(net: MemNet) -> None:
        a, _, end = await a_and_b(net)
        hub = net.hub
        assert hub is not None
        assert end.peer is not None
        (to_a,) = [  # the hub's end of a's link (not b's)
            e
            for e in hub.channels.ends.values()
            if e.direct and e.peer is not None and e.peer.identifier != end.peer.identifier
        ]
        notice = no_route((Address("worker", "tcp-some-other"),), (end.dec,))
        await hub.router.route(RoutedMessage((to_a.enc, NOTICE_SERVICE), (), notice))
        await still_open(a, end)

    run_memnet(test, tmp_path)


def test_a_notice_sent_unauthenticated_into_the_channel_closes_nothing(tmp_path: Path) -> None:
    """The notice's bytes sent into a's channel end as they are, or into a's node as a routed
    message from its connection (no channel): no key made them, and they close nothing."""

    async def test(net: MemNet) -> None:
        a, _, end = await a_and_b(net)
        notice = no_route(end.peer_route[1:2], (end.dec,))
        await a.router.route(RoutedMessage((end.dec,), (), notice))
        for route in ((NOTICE_SERVICE,), (end.dec, NOTICE_SERVICE)):
            with contextlib.suppress(TrothError):  # refused at the router: nothing closed
                await a.router.route(RoutedMessage(route, (end.peer_route[0],), notice))
        await still_open(a, end)

    run_memnet(test, tmp_path)
