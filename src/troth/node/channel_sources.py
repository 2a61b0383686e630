"""Where a channel a peer opens comes from (troth.node.channels): the network its handshake's
source belongs to (the half-open handshake budgets), whether it came from the node at the other
end of a connection this node made, and what it counts against under the node's cap on open
channels (troth.node.channel_cap)."""

from __future__ import annotations

from typing import Final

from troth import limits
from troth.channel import VerifiedPeer
from troth.node.access import PeerCaller
from troth.node.channel_ends import is_channel_reply
from troth.node.shares import LOCAL, STRANGERS, authorities_of
from troth.routing import Route, Source
from troth.transport.connection import Connection, relayed_network, source_network

__all__ = [
    "LOCAL_ONLY",
    "STRANGERS_ONLY",
    "behind_other_end",
    "counts_against",
    "forwarded_room",
    "from_other_end",
    "own_link",
    "source_network_of",
]


def counts_against(peer: VerifiedPeer, source_key: str, own: bool) -> frozenset[bytes]:
    """What a peer that opened a channel from `source_key` counts against under the node's cap
    (`troth.node.channel_cap`): {LOCAL} for a local caller and the node at the other end of a
    connection this node made (`own`: its hub, a configured peer, an anchor showing no chain);
    else the authorities at the roots of its verified chains, {STRANGERS} (a stranger) for
    none the node trusts (review 54r, channels 1)."""
    if own or source_key == "local":
        return LOCAL_ONLY
    return authorities_of(PeerCaller(peer, ""))


def own_link(source: Source | None, return_route: Route) -> bool:
    """Whether a message 1 with `return_route` came from the node at the other end of a
    connection this node made: over it, with nothing between (the connection and the sender's
    own reply address, a channel end's: `is_channel_reply`). One relayed by that node has
    its connection to the sender between, which the relay puts in the route itself: a sender
    that names no reply address of its own arrives with two hops too, the second the relay's
    connection to it, not a channel end's (review 54o, channels 1: such strangers took the
    places kept for members and never gave way)."""
    return isinstance(source, Connection) and source.outgoing and from_other_end(return_route)


def from_other_end(route: Route) -> bool:
    """Whether a channel's peer route `route` (the return route its message 1 or 2 came with,
    the connection first) reaches the node at the other end of that connection with nothing
    between: the connection and that node's own channel end (`is_channel_reply`). A party
    behind that node, its channel come over the same connection (a member the node forwards
    for: review 66q), has the node's connection to it between, which the node puts in the route
    itself, whatever return route the party named, none included (review 54o, channels 1;
    review 72i, ends 1)."""
    return len(route) == 2 and is_channel_reply(route[1])


def behind_other_end(source: Source | None, return_route: Route, source_key: str) -> bool:
    """Whether a message 1 with `return_route` that came over connection `source` was sent by
    a party behind the node whose own channels count under the same source key (`source_key`,
    `Connection.origin`'s), not by that node: behind the node at the other end of the
    connection (`from_other_end` false: a member that node forwards for, review 66q), counted
    as an accepted connection's host or, over a connection this node made, as that connection
    when the relay there named no connection of its own to the sender; or behind a sender the
    relay at the other end names by its connection to it (`return_route[1]`: the key of that
    sender's own channels, the relay's connection to it and its channel end's reply address,
    `from_other_end` of the route past this node's connection; review 73c, rooms 1: members
    behind a node reached through a relay held its whole limit). Such a party may hold only
    `forwarded_room` of the source's limit (review 72p, ends2 1)."""
    if not isinstance(source, Connection) or from_other_end(return_route):
        return False
    if source.outgoing and source_key != str(source.address):  # a sender the relay names
        return not from_other_end(return_route[1:])
    return True


def forwarded_room(limit: int) -> int:
    """How many of a source's `limit` channels (`max_channels_per_source`) the parties behind
    the node at the other end of a connection may hold, their channels come over it
    (`from_other_end` false: members it forwards for, review 66q, all counted as its host): the
    limit less `limits.SOURCE_CHANNELS_KEPT_FOR_OWN`, at most half of it kept, so they cannot
    hold all of it and refuse the node's own next channel; the node's own may use the whole
    limit, so one source holds no more in total (review 72p, ends2 1). The same of its
    handshakes in progress (`max_half_open_per_source`; review 72r, room 1) and of its share
    of the handshake rate (`handshake_burst`, troth.node.opening_rates; review 73c, rooms 2)."""
    return limit - min(limits.SOURCE_CHANNELS_KEPT_FOR_OWN, limit // 2)


STRANGERS_ONLY: Final = frozenset({STRANGERS})
"""What a stranger's channel counts against (no authority the node trusts)."""
LOCAL_ONLY: Final = frozenset({LOCAL})
"""What a local caller's channel, and its own links' peers', count against."""


def source_network_of(source_key: str) -> str:
    """The network a half-open handshake's source belongs to (`Connection.origin`'s key): an
    accepted connection's `<kind> <host>` as its kind and `source_network` (an IPv4 /24, an
    IPv6 /48); a sender behind a relay, by the network the relay names it in (`relayed_network`:
    review 56m, relayed budgets 1; review 56s, tags 1); any other key (a local one, a relayed
    sender untagged) is its own network."""
    if (relayed := relayed_network(source_key)) is not None:
        return relayed
    kind, _, host = source_key.partition(" ")
    if not host or " " in host:
        return source_key
    return f"{kind} {source_network(host)}"
