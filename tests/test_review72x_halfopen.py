"""Review 72x, halfopen: review 72r's room kept for a node's own handshakes in progress at a
relay node, attacked (each test failed before its fix).

Halfopen 1 (low: the node-wide half-open table full). The parties behind a node that connected
to the hub (members it forwards for, review 66q) hold at most `forwarded_room` of its host's
handshakes in progress (review 72r, room 1), but past the hub's whole table
(`max_half_open`) a newcomer's message 1 evicts the oldest handshake of its own source when
that source holds the most (`half_open_victim`, review 34e/53g): a member's message 1 evicted
the node's own handshake in progress (a renewed channel key's, an agent identity's), which the
room was kept for. Now a party behind the node evicts only what the parties behind it hold;
with none of theirs to give way, its message 1 is dropped.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_channel_manager import Net, run, until
from tests.test_review72i_ends import _Behind
from tests.test_review72r_room import _Silent
from troth.channel import SecureChannel
from troth.node.channel_limits import ChannelCounters
from troth.node.channels import LISTENER, ChannelLimits
from troth.routing import Address, RoutedMessage

_OWN = Address("worker", "chan-00000000000000ff.dec")


def _handled(hub: Any, messages: int) -> bool:
    counters: ChannelCounters = hub.manager.counters
    return counters.handshakes_started + counters.refused_half_open_per_source >= messages


async def _message_1(hub: Any, behind: _Behind, reply: Address, *, own: bool, sent: int) -> None:
    """A message 1 over b's connection to the hub, left unanswered: b's own (its reply address
    its channel end's, nothing between) or a member's behind b; waits until the hub took it up
    or refused it (`sent` messages so far)."""
    channel = behind.channel(reply, opens=True)
    (first,) = channel.outgoing()
    behind.channels[reply] = (_silent(), reply)
    route = (behind.connection.address, LISTENER)
    if own:
        await behind.b.router.route(RoutedMessage(route, (reply,), first))
    else:
        await behind._send(first, route, reply)
    await until(lambda: _handled(hub, sent))


def _silent() -> SecureChannel:
    return _Silent()  # type: ignore[return-value]


@pytest.mark.parametrize("table", [1, 2])
def test_a_member_does_not_evict_the_nodes_own_handshake_in_progress(table: int) -> None:
    """Halfopen 1: the hub's table holds `table` handshakes in all; b's own message 1 is held,
    the members' fill the rest, and two more members' must not evict b's own: with a member's
    held, its oldest gives way, else the member's is refused (before: b's own was evicted, the
    oldest of b's host's)."""

    async def test(net: Net) -> None:
        limits = ChannelLimits(max_half_open=table, max_half_open_per_source=8)
        hub = await net.hub(limits=limits)
        b = await net.relayed(hub, "b", limits=ChannelLimits(handshake_timeout=2.0))
        behind = _Behind(net, hub, b)
        await _message_1(hub, behind, _OWN, own=True, sent=1)
        members = [Address("worker", f"chan-{number:016x}.dec") for number in range(table + 1)]
        for sent, reply in enumerate(members, start=2):
            await _message_1(hub, behind, reply, own=False, sent=sent)
        routes = {end.peer_route[-1] for end in hub.manager._half_open}
        assert routes == {_OWN, *members[2:]}  # b's own, and the members' newest if room
        counters = hub.manager.counters  # the two past the table: each refused, or it evicted
        given_way = (counters.evicted_half_open, counters.refused_half_open_per_source)
        assert given_way == ((0, 2) if table == 1 else (2, 0))  # a member's, never b's own

    run(test)
