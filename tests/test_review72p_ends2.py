"""Review 72p, ends2: members behind a node, over the node's connection, using up the node's
per-source channel budget at a relay node (review 72i's ends 2, its strict xfail; failed before
its fix).

Ends2 1 (low-medium: a member locking its node's own next channel out). The hub counts every
channel a peer opens over a connection it accepted against that connection's host
(`Connection.origin`), up to `max_channels_per_source`; the members node b forwards over its
connection (review 66q) count as b. They could hold b's whole budget there, and b's own next
channel to the hub (a new one for a renewed channel key, an agent identity's) was refused,
message 1 dropped, b's open failing at its handshake timeout. Now the channels that do not come
from the node at the other end itself (`channel_sources.from_other_end` false: a party behind
it) may hold at most the limit less `limits.SOURCE_CHANNELS_KEPT_FOR_OWN` (at most half the
limit); the node's own may use the whole limit. One host holds no more than before in total.
"""

from __future__ import annotations

from typing import Any

from tests.test_channel_manager import Net, run, until
from tests.test_review72i_ends import _AT_B, _Behind
from troth import limits
from troth.channel import ChannelState
from troth.node.channel_sources import behind_other_end, forwarded_room
from troth.node.channels import LISTENER, ChannelLimits
from troth.routing import Address
from troth.transport.connection import Connection

_LIMIT = 4


def _connection(outgoing: bool, peer: str) -> Connection:
    return Connection(kind="tcp", outgoing=outgoing, listener=None, peer=peer, max_reply_paths=8)


async def _fill(hub: Any, behind: _Behind) -> int:
    """b's members open channels to the hub over b's connection until one is refused; how
    many opened."""
    for number in range(_LIMIT + 1):
        if not await _opens(hub, behind, Address("worker", f"chan-{number:016x}.dec")):
            return number
    return _LIMIT + 1


async def _opens(hub: Any, behind: _Behind, reply: Address) -> bool:
    """Whether a member's channel (reply address `reply`) opens, or the hub refuses it."""
    counters = hub.manager.counters
    refused = counters.refused_channels_per_source
    channel = behind.channel(reply, opens=True)
    (first,) = channel.outgoing()
    await behind._send(first, (behind.connection.address, LISTENER), reply)
    await until(
        lambda: channel.state is ChannelState.OPEN or counters.refused_channels_per_source > refused
    )
    return channel.state is ChannelState.OPEN


def test_members_behind_the_node_that_connected_leave_it_room_for_its_own_channel() -> None:
    """Ends2 1: b's members fill what the hub lets them hold of b's host's per-source limit
    (four here); b's own channel to the hub still opens, and b's own channels may then use the
    rest of the limit, no more (before: the members held all four, b's own was refused and its
    open failed at its handshake timeout)."""

    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_channels_per_source=_LIMIT))
        b = await net.relayed(hub, "b", limits=ChannelLimits(handshake_timeout=1.0))
        behind = _Behind(net, hub, b)
        members = await _fill(hub, behind)
        assert members == forwarded_room(_LIMIT) < _LIMIT
        for _ in range(_LIMIT - members):  # b's own: the rest of the limit
            own = await b.manager.open((behind.connection.address,))
            assert own.channel.state is ChannelState.OPEN
        assert len(hub.manager.ends) == _LIMIT  # one host: no more than its limit in total

    run(test)


def test_the_room_kept_for_a_nodes_own_channels() -> None:
    """Ends2 1: what the limit leaves the parties behind a node: the limit less
    SOURCE_CHANNELS_KEPT_FOR_OWN, or half of it when that is more; a limit of one keeps
    nothing (its one channel goes to whoever opens first, as before)."""
    kept = limits.SOURCE_CHANNELS_KEPT_FOR_OWN
    assert forwarded_room(256) == 256 - kept
    assert forwarded_room(4) == 2
    assert forwarded_room(1) == 1


def test_only_parties_sharing_the_nodes_own_source_key_get_the_smaller_room() -> None:
    """Ends2 1 (its bounds): the smaller room is for the parties behind the node at the other
    end that count under that node's own key: over a connection it made to this node (its
    host's key), or over one this node made whose relay named no connection of its own to the
    sender; a sender a relay tagged (its own host's key), the node itself, and a message 1 from
    within the node keep the whole limit."""
    accepted, made = _connection(False, "192.0.2.7:5000"), _connection(True, "192.0.2.8:4000")
    reply = Address("worker", "chan-00000000000000aa.dec")
    tagged = _connection(False, "198.51.100.9:5000").address  # (as a relay names its
    # connection to a sender: tagged by its host)
    for connection in (accepted, made):
        own_route = (connection.address, reply)
        assert not behind_other_end(connection, own_route, connection.origin(own_route))
    behind = (accepted.address, _AT_B, reply)
    assert behind_other_end(accepted, behind, accepted.origin(behind))
    untagged = (made.address,)
    assert behind_other_end(made, untagged, made.origin(untagged))
    relayed = (made.address, tagged, reply)
    assert not behind_other_end(made, relayed, made.origin(relayed))
    assert not behind_other_end(None, (reply,), "local")
