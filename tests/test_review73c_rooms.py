"""Review 73c, rooms: the room a node keeps for its own channels and handshakes at another node
(reviews 72p, 72r, 72x), attacked a second time (each test failed before its fix).

Rooms 1 (low-medium: review 72p's ends2 1 again, over a relay). Node b reaches node a through
a relay both connected to (a's connection to the relay is one a made): a counts b's channels
under the relay's tag for b's connection (`Connection.origin`: `<a's connection> via <the
relay's connection to b>`), with the whole per-source limit. The members b forwards for over
its connection (review 66q) arrive at a with b's connection to them put in the route after the
relay's: the same source key as b's own, and nothing kept for b (`behind_other_end` judged only
the node at the other end of a's own connection). They held every channel (or handshake) of
b's key, and b's own next channel to a was refused, its open failing at its handshake timeout.
Now a party behind a relayed sender (anything past that sender's own channel end, the relay's
connection to it and a channel end's reply address) holds at most `forwarded_room`, as behind
a node that connected.

Rooms 2 (low-medium: review 72r's room 2, its strict xfail): the parties behind a node spent its
source's share of the handshake rate with messages 1 that never complete, and the node's own
next message 1 was dropped until it refilled. Now they spend the share only down to the part
kept for the node's own (the same share: the source opens no more in all); the attack is
`tests/test_review72r_room.py`'s room 2 test, now passing.

Rooms 3 (low: the node-wide half-open table full, a message 1 from another network). Past the
table, a newcomer from another network evicts the oldest handshake of the network and source
holding the most (`half_open_victim`). The members behind a node made its source the largest
(their room is half its handshakes in progress), so a stranger's message 1 from anywhere else
evicted that source's oldest: the node's own handshake when it was older than theirs, as they
arranged by sending theirs after it (review 72x kept the node's own from its members' messages
1 only). Now, of the source that gives way, a party behind a node's handshake goes first.

Rooms 4 (low: rooms 2's fix one budget over). The parties behind a node spent its source's
share only down to the part kept for the node's own, but the network's budget (its /24) to
nothing: the members behind two nodes of one network (an organisation's behind one NAT), from
anywhere, spent it all between them, and both nodes' own messages 1 were dropped though each
node's share kept room (what only two flooding addresses within the /24 could do before). Now
they spend the network's budget too only down to the same part kept.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

from tests.test_channel_manager import Net, attacker, message_1, run, until
from tests.test_review72i_ends import _Behind
from tests.test_review72r_room import _FrozenLoop
from tests.test_review72x_halfopen import _OWN, _message_1, _silent
from troth.channel import ChannelState, SecureChannel
from troth.node import opening_rates
from troth.node.channel_limits import ChannelCounters
from troth.node.channel_sources import forwarded_room
from troth.node.channels import LISTENER, ChannelLimits
from troth.node.opening_rates import OpeningRates
from troth.routing import Address

_LIMIT = 4
_A = Address("relay", "a")


def _refused(a: Any) -> int:
    counters: ChannelCounters = a.manager.counters
    return counters.refused_channels_per_source + counters.refused_half_open_per_source


def _held_or_refused(a: Any, held: int, refused: int) -> bool:
    return len(a.manager.ends) >= held or _refused(a) > refused


def _open(channel: SecureChannel) -> bool:
    return channel.state is ChannelState.OPEN


async def _fill(a: Any, behind: _Behind, *, answer: bool) -> int:
    """b's members open channels to a through the relay (`answer`: each finished, else each
    handshake left in progress) until a refuses one; how many a holds."""
    for number in range(_LIMIT + 1):
        refused, reply = _refused(a), Address("worker", f"chan-{number:016x}.dec")
        channel = behind.channel(reply, opens=True)
        (first,) = channel.outgoing()
        if not answer:
            behind.channels[reply] = (_silent(), reply)
        await behind._send(first, (behind.connection.address, _A, LISTENER), reply)
        await until(partial(_held_or_refused, a, number + 1, refused))
        if _refused(a) > refused:
            return number
        if answer:
            await until(partial(_open, channel))
    return _LIMIT + 1


@pytest.mark.parametrize("limit", ["max_channels_per_source", "max_half_open_per_source"])
def test_members_behind_a_relayed_node_leave_it_room_for_its_own_channel(limit: str) -> None:
    """Rooms 1: b reaches a through the relay; b's members fill what a lets them hold of b's
    key (four channels, or four handshakes in progress, here); b's own channel to a still opens
    (before: they held all four and b's message 1 was refused, its open failing at its
    handshake timeout)."""

    async def test(net: Net) -> None:
        hub = await net.hub()
        a = await net.relayed(hub, "a", limits=ChannelLimits(**{limit: _LIMIT}))
        b = await net.relayed(hub, "b", limits=ChannelLimits(handshake_timeout=2.0))
        behind = _Behind(net, hub, b)
        held = await _fill(a, behind, answer=limit == "max_channels_per_source")
        assert held == forwarded_room(_LIMIT) < _LIMIT
        own = await b.manager.open((behind.connection.address, _A))
        assert own.channel.state is ChannelState.OPEN

    run(test)


def test_a_strangers_message_1_evicts_a_member_before_the_nodes_own_handshake() -> None:
    """Rooms 3: the hub's table holds three handshakes; b's own message 1 is held first, then
    two of its members' (b's source the largest); a stranger's message 1 from another network
    evicts one of the members', never b's own (before: b's own, the oldest of b's source)."""

    async def test(net: Net) -> None:
        limits = ChannelLimits(max_half_open=3, max_half_open_per_source=8)
        hub = await net.hub(limits=limits)
        b = await net.relayed(hub, "b", limits=ChannelLimits(handshake_timeout=2.0))
        behind = _Behind(net, hub, b)
        await _message_1(hub, behind, _OWN, own=True, sent=1)
        members = [Address("worker", f"chan-{number:016x}.dec") for number in range(2)]
        for sent, reply in enumerate(members, start=2):
            await _message_1(hub, behind, reply, own=False, sent=sent)
        counters = hub.manager.counters
        await attacker(net).route(message_1("stranger"))
        await until(lambda: counters.evicted_half_open == 1)
        routes = {end.peer_route[-1] for end in hub.manager._half_open}
        assert _OWN in routes
        assert members[0] not in routes

    run(test)


def test_members_behind_two_nodes_of_a_network_leave_them_openings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rooms 4: the members behind nodes b and c (two hosts of one /24) send messages 1 that
    never complete until each is refused; b's own and c's own messages 1 are still taken up
    (before: the members' took the network's whole burst, 240 for b's and 16 for c's, and both
    nodes' own were refused)."""
    monkeypatch.setattr(opening_rates, "asyncio", _FrozenLoop)
    rates = OpeningRates(rate=64, burst=256)
    network = "tcp 192.0.2.0/24"
    for source in ("tcp 192.0.2.7", "tcp 192.0.2.8"):
        while rates.take(source, network, forwarded=True):
            pass
    assert rates.take("tcp 192.0.2.7", network)
    assert rates.take("tcp 192.0.2.8", network)
