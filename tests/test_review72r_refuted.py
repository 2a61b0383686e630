"""Review 72r: attacks on review 72p's room kept for a node's own channels
(`troth.node.channel_sources.forwarded_room`, `behind_other_end`) that did not work (each passes
on the code as it is; kept so a change that makes one work fails here)."""

from __future__ import annotations

import pytest

from tests.support.parties import make_channel_party
from tests.test_channel_manager import Net, run, until
from tests.test_review72i_ends import _Behind
from tests.test_review72p_ends2 import _fill
from troth import limits
from troth.channel import ChannelState
from troth.node.channel_sources import forwarded_room
from troth.node.channels import ChannelLimits


@pytest.mark.parametrize("limit", [1, 2, 3, 16, 31, 32, 33, 256])
def test_the_room_kept_at_the_limits_edges(limit: int) -> None:
    """72r refuted: an operator's limit at an edge (1, 2, 16, 32, 33: `TROTH_CHANNELS_MAX_
    CHANNELS_PER_SOURCE`, `MAX_HALF_OPEN_PER_SOURCE`, at least 1) never leaves the parties
    behind a node nothing (a limit of one keeps nothing back), never keeps more than half or
    more than SOURCE_CHANNELS_KEPT_FOR_OWN, and never gives them more than the limit."""
    room = forwarded_room(limit)
    kept = limit - room
    assert 1 <= room <= limit
    assert kept <= min(limits.SOURCE_CHANNELS_KEPT_FOR_OWN, limit // 2)
    assert kept == min(limits.SOURCE_CHANNELS_KEPT_FOR_OWN, limit // 2)


def test_a_limit_below_one_is_refused() -> None:
    """72r refuted: a per-source limit of 0 (every channel refused, the room kept negative) is
    refused as the limits are made, not taken."""
    for name in ("max_channels_per_source", "max_half_open_per_source"):
        with pytest.raises(ValueError, match=name):
            ChannelLimits(**{name: 0})


def test_room_closed_is_given_back_and_the_count_does_not_drift() -> None:
    """72r refuted: the count is one per source, whatever room a channel was let in by (a
    channel is never reclassified in it): b's members fill their room, one closes and another
    opens in its place, b's own use the rest; once every channel closes the hub counts nothing
    for b's host, and the members have their whole room again."""

    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_channels_per_source=4))
        b = await net.relayed(hub, "b", limits=ChannelLimits(handshake_timeout=2.0))
        behind = _Behind(net, hub, b)
        assert await _fill(hub, behind) == forwarded_room(4)
        first = next(iter(hub.manager.ends.values()))
        await first.close()
        await until(lambda: len(hub.manager.ends) == forwarded_room(4) - 1)
        assert await _fill(hub, behind) == 1  # its place, no more
        for _ in range(4 - forwarded_room(4)):
            own = await b.manager.open((behind.connection.address,))
            assert own.channel.state is ChannelState.OPEN
        for end in list(hub.manager.ends.values()):
            await end.close()
        await until(lambda: not hub.manager.ends)
        assert not hub.manager._per_source
        assert await _fill(hub, behind) == forwarded_room(4)

    run(test)


def test_an_agent_identitys_channel_through_its_node_is_the_nodes_own() -> None:
    """72r refuted: b's members fill their room; a channel b opens to the hub over its own
    connection showing another identity (an agent identity b holds: `me=`) is b's own, not
    a party's behind it (its message 1 names b's channel end, nothing between), and opens in the
    room kept."""

    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_channels_per_source=4))
        b = await net.relayed(hub, "b", limits=ChannelLimits(handshake_timeout=2.0))
        behind = _Behind(net, hub, b)
        assert await _fill(hub, behind) == forwarded_room(4)
        agent = make_channel_party(net.world.vault, now=net.clock.now)
        me = agent.me((net.world.credential(agent),))
        end = await b.manager.open((behind.connection.address,), me=me)
        assert end.channel.state is ChannelState.OPEN
        (at_hub,) = [e for e in hub.manager.ends.values() if e.peer_route[1] == end.dec]
        assert at_hub.peer is not None
        assert at_hub.peer.identifier == agent.identifier
        assert at_hub.direct

    run(test)
