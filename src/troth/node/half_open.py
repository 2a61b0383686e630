"""Which half-open handshake gives way for a newcomer's when a node's table of them is full
(troth.node.channels, `ChannelManager._make_room`; docs/protocols.md, "Limits")."""

from __future__ import annotations

import collections
from collections.abc import Mapping

from troth.node.channel_ends import ChannelEnd

__all__ = ["half_open_victim"]


def half_open_victim(
    networks: Mapping[ChannelEnd, str], source_key: str, network: str, *, forwarded: bool = False
) -> ChannelEnd | None:
    """The handshake to give up (`networks`: each half-open end's network, oldest first) for a
    newcomer's message 1 from `source_key` in `network`: the oldest handshake of the sources
    holding the most (this source's own when it is one of them); with every source at one, the
    oldest of all. A genuine handshake finishes within a round trip, so keeping newcomers out
    takes a full table of messages 1 per round trip; refusing the newcomer when no source held
    more than its own would let sources holding one each (256 networks: one IPv6 /56) lock
    every newcomer out for one message 1 each per handshake timeout (review 34e, handshakes 2).
    Networks first (`channel_sources.source_network_of`): the sources of one network each
    holding one were never "the most", and their messages 1 evicted another network's
    handshakes, so the network holding the most gives up its own (review 53g, handshakes 1).
    `forwarded`: the newcomer is a party behind the node at the other end of a connection
    (`channel_sources.behind_other_end`); of its own source it evicts only such a party's
    handshake, never the node's own (the room kept for it, review 72r, room 1): None when
    there is none (review 72x, halfopen 1: a member's message 1 evicted its node's own). Of
    the sources that give way, such a party's handshake goes first, whoever the newcomer is:
    the parties behind a node made its source the largest, and a message 1 from elsewhere
    evicted that node's own, the oldest of it (review 73c, rooms 3)."""
    held_by = collections.Counter(networks.values())
    most = max(held_by.values())
    if held_by[network] != most:  # another network holds more: its handshakes go
        network = next(n for n in networks.values() if held_by[n] == most)
    ends = [end for end, of in networks.items() if of == network]
    sources = collections.Counter(end.source_key for end in ends)
    most = max(sources.values())
    own = sources[source_key] == most  # this source is among the largest: its own oldest
    ends = [
        e for e in ends if (e.source_key == source_key if own else sources[e.source_key] == most)
    ]
    behind = next((end for end in ends if end.forwarded), None)
    return behind if behind is not None or (own and forwarded) else ends[0]
