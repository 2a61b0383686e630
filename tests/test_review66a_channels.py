"""Review 66a, a closed peer's channel ends on the hub (troth.node.channels, troth.node.links).

1. `test_review45b_standings::test_a_closed_peers_standings_are_forgotten` hung about one run
   in eight (under load, on every head since it was written): after `await end.close()` its
   `_closed(hub, me)` waited for the hub to hold no channel of the member at all. The hub had
   forgotten the closed end (and its standing) every time; the channel it still held was a
   new one, opened by the member's own link to its authority at `/tcp/hub:4000`
   (troth.node.links): `channel_to(HUB)` hands out the link's channel (round 0: the one the
   enrollment opened; later rounds: the test's new channel, which the reconnecting link
   adopts), so closing it is losing the link's channel, and the link reconnects after a
   full-jitter backoff, uniform in [0, ceiling): whenever that draw fell within the few
   milliseconds before the poll saw the closed end gone, the link's fresh channel (connected
   for good, its backoff no longer running) kept `_closed` waiting until the test's budget.
   Not a protocol gap: the close reached the hub and the hub dropped the end. The test's
   member now keeps its link from reconnecting within the test (a fixed draw of a long
   backoff), and `test_a_links_channel_closed_is_replaced_not_kept` pins the race
   deterministically (the link reconnects at once; the hub holds the link's new channel and
   not the closed one).

Checked and holding (no change): a peer that goes away without a CLOSE cannot make the hub
keep its channel ends. Its connection closing (a TCP reset) closes every channel over it at
once (`ChannelManager.connection_lost`) and drops its standings with its last channel
(`test_an_abrupt_disconnect_drops_the_peers_ends_and_standings`); a peer whose connection
stays up but which goes silent (a relayed peer whose relay never noticed, a blackholed host)
has its channels closed by the keepalive after `keepalive_timeout` without an authenticated
frame (`test_a_silent_peers_channel_is_closed_by_the_keepalive`); until then its ends are
bounded by the per-source, per-peer, per-member and node-wide caps (troth.node.channel_limits).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from tests.support.nodes import HUB, MemNet, run_memnet
from tests.test_review45b_standings import _cached
from troth.identity import Identifier
from troth.node.channel_ends import ChannelEnd
from troth.node.links import Backoff, LinkState
from troth.node.runtime import ECHO, NodeRuntime
from troth.node.services import call
from troth.routing import parse_route


def _ends_of(hub: NodeRuntime, identifier: Identifier) -> list[ChannelEnd]:
    """The hub's channel ends whose verified peer is `identifier`."""
    return [
        end
        for end in hub.channels.ends.values()
        if end.peer is not None and end.peer.identifier == identifier
    ]


def _facing(hub: NodeRuntime, end: ChannelEnd) -> list[ChannelEnd]:
    """The hub's ends of the channel whose other end is `end` (its `.dec` ends their route)."""
    return [e for e in hub.channels.ends.values() if e.peer_route[-1:] == (end.dec,)]


def _never() -> Backoff:
    """A backoff whose draws (`random=lambda: 0.5`) wait half an hour: no reconnect in a test."""
    return Backoff(base=3600, max_delay=3600)


async def _until(condition: Callable[[], bool]) -> None:
    """Wait (within the test's budget) until `condition()` holds."""
    while not condition():
        await asyncio.sleep(0.005)


def test_a_links_channel_closed_is_replaced_not_kept(tmp_path: Path) -> None:
    """1: the member closes the channel `channel_to(HUB)` gave it, which is its link's; its link
    reconnects at once (backoff draw 0): the hub dropped the closed channel's end, and the one
    channel of the member it holds is the link's new one (what kept the old test waiting)."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        member = await net.node("a", random=lambda: 0.0)
        await member.enroll(net.ticket(), "a")
        me = net.identifier(member)
        end = await member.channel_to(parse_route(HUB))
        assert await call(member.router, (end.enc, ECHO), "echo", 1) == 1
        assert [row.state for row in member.link_rows()] == [LinkState.CONNECTED]
        assert len(_facing(hub, end)) == 1
        await end.close()
        await _until(lambda: member.link_rows()[0].state is LinkState.CONNECTED)
        await _until(lambda: not _facing(hub, end))  # the close reached the hub
        again = await member.channel_to(parse_route(HUB))
        assert again is not end
        assert _ends_of(hub, me) == _facing(hub, again)  # the link's channel, and only it
        assert len(_ends_of(hub, me)) == 1

    run_memnet(test, tmp_path)


def test_an_abrupt_disconnect_drops_the_peers_ends_and_standings(tmp_path: Path) -> None:
    """Refuted: a member's connection to the hub closes with no CLOSE sent on its channel (a
    TCP reset): the hub forgets the channel and the member's cached standing at once."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        member = await net.node("a", random=lambda: 0.5, backoff=_never())
        await member.enroll(net.ticket(), "a")
        me = net.identifier(member)
        end = await member.channel_to(parse_route(HUB))
        assert await call(member.router, (end.enc, ECHO), "echo", 1) == 1
        assert _ends_of(hub, me)
        connection = member.tcp.connection(end.peer_route[0])
        assert connection is not None
        await connection.close()  # the channel's CLOSE is never sent
        await _until(lambda: not _ends_of(hub, me))
        assert _cached(hub, me) == 0

    run_memnet(test, tmp_path)


def test_a_silent_peers_channel_is_closed_by_the_keepalive(tmp_path: Path) -> None:
    """Refuted: a member goes silent with its connection up (nothing more arrives from it): the
    hub's keepalive closes its channel once `keepalive_timeout` passed without an authenticated
    frame, and its standing goes with it."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        member = await net.node("a", random=lambda: 0.5, backoff=_never())
        await member.enroll(net.ticket(), "a")
        me = net.identifier(member)
        end = await member.channel_to(parse_route(HUB))
        assert await call(member.router, (end.enc, ECHO), "echo", 1) == 1
        assert _ends_of(hub, me)
        timeout = hub.channels.settings.keepalive_timeout
        now = asyncio.get_running_loop().time()
        hub.channels.keepalive(now)  # the last frame heard: silence is measured from here
        hub.channels.keepalive(now + timeout - 1)  # silent, within the timeout: kept
        assert _ends_of(hub, me)
        hub.channels.keepalive(now + timeout + 1)  # nothing heard since: closed
        await _until(lambda: not _ends_of(hub, me))
        assert _cached(hub, me) == 0

    run_memnet(test, tmp_path)
