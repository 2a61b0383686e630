"""Review 50f: attacks on the no-route notice passed back hop by hop (docs/protocols.md,
"Unanswered channels"; troth.node.no_route) that failed: the code was right. A node passes a
notice back only toward a connection that could reach the one it came from, and a sender
closes a channel only when the way named is that channel's own next hops."""

from __future__ import annotations

from pathlib import Path

from tests.support.nodes import MemNet, run_memnet
from tests.test_review49b_noroute import direct_end
from tests.test_review49b_refuted import a_and_b, still_open
from troth.node.channel_ends import ChannelEnd
from troth.node.runtime import NodeRuntime
from troth.routing import Address, RoutedMessage
from troth.routing.notice import NOTICE_SERVICE, no_route


def hub_end_of(hub: NodeRuntime, member: NodeRuntime) -> ChannelEnd:
    """The hub's end of `member`'s link (its peer at the other end of its connection)."""
    (end,) = [
        e
        for e in hub.channels.ends.values()
        if e.direct and e.peer is not None and e.peer.identifier == member.identifier
    ]
    return end


async def notify_hub(
    member: NodeRuntime, way: tuple[Address, ...], sender: tuple[Address, ...]
) -> None:
    """`member` sends the hub a notice over its own link (authenticated: the hub takes it)."""
    link = direct_end(member)
    await member.router.route(RoutedMessage((link.enc, NOTICE_SERVICE), (), no_route(way, sender)))


def test_a_member_cannot_have_the_hub_pass_a_notice_to_a_connection_it_never_reached(
    tmp_path: Path,
) -> None:
    """m, a member connected to the hub, sends it a notice for a's connection there, naming
    a's channel to b and its next hops exactly: a's connection never reached m's, so the hub
    passes nothing back (m is on no way of a's)."""

    async def test(net: MemNet) -> None:
        a, _, end = await a_and_b(net)
        hub = net.hub
        assert hub is not None
        m = await net.member("m")
        to_a = hub_end_of(hub, a).peer_route[0]
        await notify_hub(m, end.peer_route[1:3], (to_a, end.dec))
        await still_open(a, end)
        assert hub.channels.counters.no_route_notices_forwarded == 0

    run_memnet(test, tmp_path)


def test_the_member_past_the_hub_cannot_close_a_channel_by_a_way_not_its_own(
    tmp_path: Path,
) -> None:
    """b, relayed at the hub (a's connection there reaches b's), sends the hub a notice for
    a's channel to it naming another dead address: the hub passes it back (b is at the other
    end of that way's first hop), and a drops it: the way is not its channel's."""

    async def test(net: MemNet) -> None:
        a, b, end = await a_and_b(net)
        hub = net.hub
        assert hub is not None
        to_a = hub_end_of(hub, a).peer_route[0]
        await notify_hub(b, (Address("worker", "tcp-some-other"),), (to_a, end.dec))
        await still_open(a, end)
        assert hub.channels.counters.no_route_notices_forwarded == 1

    run_memnet(test, tmp_path)


def test_a_notice_naming_no_connection_at_the_hub_is_not_passed_back(tmp_path: Path) -> None:
    """b names, as the connection to pass it back over, a's channel end at the hub (a worker
    address served there, not a connection) or an address the hub does not serve: dropped."""

    async def test(net: MemNet) -> None:
        a, b, end = await a_and_b(net)
        hub = net.hub
        assert hub is not None
        at_hub = hub_end_of(hub, a)
        for back in (at_hub.dec, Address("worker", "tcp-none")):
            await notify_hub(b, end.peer_route[2:3], (back, end.dec))
        await still_open(a, end)
        assert hub.channels.counters.no_route_notices_forwarded == 0

    run_memnet(test, tmp_path)
