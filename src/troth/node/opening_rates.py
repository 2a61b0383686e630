"""How fast a node takes up handshake openings (messages 1) from each network: a token bucket
per network, spent before a message 1 costs the node a responder's handshake work (~0.4 ms of
CPU). The half-open table bounds how many handshakes are held, not how fast they come: a flood
from one /24 evicted its own oldest entries, never met its per-source limit, and was taken up at
any rate (review 57c, handshakes 1). A source spends at most a share of its network's refill (review
57u, openings 1: one address reconnecting spent its whole /24's). Used by troth.node.channels'
listener; docs/protocols.md, "Load limits"."""

from __future__ import annotations

import asyncio
import itertools
from typing import Final

from troth import limits as protocol_limits
from troth.node.channel_sources import forwarded_room
from troth.rates import ByteBudgets

__all__ = ["ROOM_SHARE", "OpeningRates"]

ROOM_SHARE: Final = 4
"""A full table of handshake budgets makes room for 1/ROOM_SHARE of it at once (review 60f,
listener 2)."""


class _Budgets(ByteBudgets):
    """Evicting budgets whose full table makes room for a quarter of it at once: the refilled
    ones first (`ByteBudgets.prune`), then the oldest. ByteBudgets makes room for one, and finds
    the refilled ones by a scan of the table, so past a full table of budgets taken within the
    second (none refilled yet), each newcomer scanned all of them (review 60f, listener 2: ~2 ms
    a message 1 from a new network for both tables); now a scan is paid once for a quarter of
    the table's newcomers. A budget forgotten starts full again, as one evicted did."""

    def prune(self, *, now: int) -> None:
        """Forget the refilled budgets, and, while less than a quarter of the table is free,
        the oldest."""
        super().prune(now=now)
        over = len(self) - (self.max_sources - max(1, self.max_sources // ROOM_SHARE))
        if over > 0:
            buckets = self._buckets  # (ByteBudgets' own table, oldest first)
            for source in list(itertools.islice(buckets, over)):
                del buckets[source]


class OpeningRates:
    """A budget of `burst` messages 1 per network, refilled at `rate` a second of the event
    loop's clock (the CPU they cost is spent in real time, whatever the node's clock says); at
    most `MAX_HANDSHAKE_NETWORKS` kept, refilled ones forgotten first, then the oldest, a
    quarter of the table at once (a newcomer's network is never refused for want of a slot); of
    its refill, one source (an address, a sender behind a relay) at most
    1/`HANDSHAKE_SOURCE_SHARE` (its burst all of it), so one source flooding without end leaves
    the rest of its network's to its neighbours. An opening whose handshake completes is given
    back (`give_back`): completed handshakes are an authenticated peer's, bounded by the
    per-peer and per-source channel limits."""

    __slots__ = ("_budgets", "_kept", "_sources")

    def __init__(self, *, rate: int, burst: int) -> None:
        self._budgets = _Budgets(
            rate=rate,
            burst=burst,
            max_sources=protocol_limits.MAX_HANDSHAKE_NETWORKS,
            evict=True,
        )
        share = protocol_limits.HANDSHAKE_SOURCE_SHARE
        self._sources = _Budgets(
            rate=max(1, rate // share),
            burst=burst,  # members behind one NAT reconnecting at once: all taken up
            max_sources=protocol_limits.MAX_HANDSHAKE_SOURCES,
            evict=True,
        )
        self._kept = burst - forwarded_room(burst)  # (of a source's share: `take`)

    def take(self, source: str, network: str, *, forwarded: bool = False) -> bool:
        """Spend one opening of `source`'s share and of `network`'s budget (False, nothing
        spent, when either has none). `forwarded`: for a party behind the node whose own
        channels count under `source` (`channel_sources.behind_other_end`), which spends the
        share, and the network's budget, only down to the part kept for the node's own
        (`forwarded_room` of the burst: 16 of 256, half of a burst under 32). The same
        budgets, not ones of their own, so the source opens no more than before in all
        (review 73c, rooms 2: review 72r's room 2, where such parties' messages 1 that never
        complete spent the share and the node's own was refused; rooms 4: the network's,
        which the members behind two nodes of one /24 spent between them)."""
        now = int(asyncio.get_running_loop().time())
        keep = self._kept if forwarded else 0
        if not self._sources.take(source, 1, now=now, keep=keep):
            return False
        if self._budgets.take(network, 1, now=now, keep=keep):  # (the network's: rooms 4)
            return True
        self._sources.refund(source, 1, now=now)
        return False

    def give_back(self, source: str, network: str) -> None:
        """A handshake `take` paid for completed: its opening is given back to `source` and
        `network`, so only openings that never complete (a flood of messages 1, each costing the
        node a responder's work) spend the budget; a client opening channel after channel, each
        finished, was refused past the burst (troth bench's `channel.establish` timed out)."""
        now = int(asyncio.get_running_loop().time())
        self._sources.refund(source, 1, now=now)
        self._budgets.refund(network, 1, now=now)

    def __len__(self) -> int:
        return len(self._budgets)
