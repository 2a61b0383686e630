"""Review 66a, attacks on the hub's channel ends that did not work (tests/test_review66a_channels.py
has the findings).

A peer that goes away without a CLOSE cannot make the hub keep its channel ends: its connection
closing (a TCP reset) closes every channel over it at once (`ChannelManager.connection_lost`)
and drops its standings with its last channel; a peer whose connection stays up but which goes
silent (a relayed peer whose relay never noticed, a blackholed host) has its channels closed by
the keepalive after `keepalive_timeout` without an authenticated frame. Until then its ends are
bounded by the per-source, per-peer, per-member and node-wide caps (troth.node.channel_limits).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.nodes import HUB, MemNet, run_memnet
from tests.test_review45b_standings import _cached
from tests.test_review66a_channels import _ends_of, _never, _until
from troth.node.runtime import ECHO
from troth.node.services import call
from troth.routing import parse_route


def test_an_abrupt_disconnect_drops_the_peers_ends_and_standings(tmp_path: Path) -> None:
    """A member's connection to the hub closes with no CLOSE sent on its channel (a
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
    """A member goes silent with its connection up (nothing more arrives from it): the
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
