"""Review 72r, room: review 72p's room kept for a node's own channels at a relay node, attacked
(each test failed before its fix).

Room 1 (low-medium: review 72p's ends2 1 again, one limit over). The members a node forwards
over its connection (review 66q) count as that node's host at the relay node it connected to.
Review 72p kept room for the node's own channels in that host's channel limit
(`max_channels_per_source`), but not in its limit on handshakes in progress
(`max_half_open_per_source`, 16), checked in the same `_make_room` just after: the members sent
as many messages 1 as it allows and never answered the relay's message 2 (each held for the
handshake timeout, sent again as it expired), and the node's own next channel there (a renewed
channel key's, an agent identity's) was refused, message 1 dropped, its open failing at its
handshake timeout. Now the parties behind the node hold at most `forwarded_room` of that limit
too (16 less half of it kept: 8); the node's own may use all of it.

Room 2 (low-medium; a strict xfail here until review 73c, rooms 2): the same parties spent the
node's source's share of the handshake rate with messages 1 that never complete, and the node's
own next message 1 was dropped until it refilled. Now they spend that share (and their
network's budget: 73c rooms 4) only down to the part kept for the node's own, the same budgets.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any, cast

import pytest

from tests.test_channel_manager import Net, run, until
from tests.test_review72i_ends import _Behind
from troth.channel import ChannelState, SecureChannel
from troth.node import opening_rates
from troth.node.channel_limits import ChannelCounters
from troth.node.channel_sources import forwarded_room
from troth.node.channels import LISTENER, ChannelLimits
from troth.routing import Address

_HALF_OPEN = 4


class _Silent:
    """A member's end that never answers the relay's message 2 (its handshake held open)."""

    def receive(self, _data: object, _now: int) -> None:
        return None

    def outgoing(self) -> list[bytes]:
        return []


def _held_or_refused(hub: Any, held: int, refused: int) -> bool:
    """Whether the hub holds `held` handshakes, or refused one more for b's host."""
    counters: ChannelCounters = hub.manager.counters
    return len(hub.manager._half_open) >= held or counters.refused_half_open_per_source > refused


def _handled(counters: ChannelCounters, messages: int) -> bool:
    """Whether the hub took up or refused `messages` messages 1 so far."""
    return counters.handshakes_started + counters.refused_handshake_rate >= messages


async def _hold_handshakes(hub: Any, behind: _Behind) -> int:
    """b's members send messages 1 to the hub over b's connection and leave each handshake
    open, until one is refused; how many the hub holds."""
    counters = hub.manager.counters
    for number in range(_HALF_OPEN + 1):
        refused = counters.refused_half_open_per_source
        reply = Address("worker", f"chan-{number:016x}.dec")
        channel = behind.channel(reply, opens=True)
        (first,) = channel.outgoing()
        behind.channels[reply] = (cast(SecureChannel, _Silent()), reply)
        await behind._send(first, (behind.connection.address, LISTENER), reply)
        await until(partial(_held_or_refused, hub, number + 1, refused))
        if counters.refused_half_open_per_source > refused:
            return number
    return _HALF_OPEN + 1


def test_members_behind_the_node_leave_it_room_for_its_own_handshake() -> None:
    """Room 1: b's members hold what the hub lets them of b's host's handshakes in progress
    (half of four here) and never finish them; b's own channel to the hub still opens (before:
    they held all four and b's message 1 was refused, its open failing at its timeout)."""

    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_half_open_per_source=_HALF_OPEN))
        b = await net.relayed(hub, "b", limits=ChannelLimits(handshake_timeout=2.0))
        behind = _Behind(net, hub, b)
        held = await _hold_handshakes(hub, behind)
        assert held == forwarded_room(_HALF_OPEN) < _HALF_OPEN
        counters = hub.manager.counters
        opening = asyncio.create_task(b.manager.open((behind.connection.address,)))
        await until(lambda: opening.done() or counters.refused_half_open_per_source > 1)
        assert counters.refused_half_open_per_source == 1  # the members' last one only
        own = await opening
        assert own.channel.state is ChannelState.OPEN

    run(test)


class _FrozenLoop:
    """The event loop's clock as the handshake budgets read it, stopped (no refill between two
    messages 1 of a test, whatever the machine's load)."""

    @staticmethod
    def get_running_loop() -> _FrozenLoop:
        return _FrozenLoop()

    def time(self) -> float:
        return 1000.0


def test_members_behind_the_node_leave_it_handshake_openings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Room 2 (fixed by review 73c, rooms 2; a strict xfail until then): b's members send
    messages 1 the hub cannot use (an all-zero ephemeral key: no handshake, its opening spent,
    never given back) until the hub refuses them for b's host's handshake rate: they spend its
    share of a burst of four only down to the part kept for b's own (half of it); b's own
    channel to the hub still opens (before: they spent all four and b's message 1 was refused,
    its open failing at its handshake timeout)."""
    monkeypatch.setattr(opening_rates, "asyncio", _FrozenLoop)

    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(handshake_burst=4, handshake_rate=1))
        b = await net.relayed(hub, "b", limits=ChannelLimits(handshake_timeout=2.0))
        behind = _Behind(net, hub, b)
        counters = hub.manager.counters
        route = (behind.connection.address, LISTENER)
        unusable = b"\x00\x21\x01" + bytes(32)
        room = forwarded_room(4)
        for sent in range(1, room + 2):  # each taken up (and forgotten) or refused in turn
            await behind._send(unusable, route, Address("worker", "chan-00000000000000aa.dec"))
            await until(partial(_handled, counters, sent))
        assert (counters.handshakes_started, counters.refused_handshake_rate) == (room, 1)
        assert not hub.manager.ends  # none held: each was forgotten at once
        opening = asyncio.create_task(b.manager.open((behind.connection.address,)))
        await until(lambda: opening.done() or counters.refused_handshake_rate > 1)
        assert counters.refused_handshake_rate == 1  # the members' last one only
        assert (await opening).channel.state is ChannelState.OPEN

    run(test)
