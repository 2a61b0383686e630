"""The node-wide cap on open channels peers opened (docs/protocols.md, "Limits on a node";
review 54k, channels 1), sans-IO: the channel manager tells it which channels opened and
closed, and asks it, as a peer's channel opens, whether there is room, which channel gives way
for it, or that it is refused.

Open channels were bounded per peer identity, per member and per source, but not per node: a
stranger's identity (no chain) costs nothing on a node that admits strangers, so strangers
from many sources, each within its per-source share, held as many channels (~17 KB each) as
they had sources. Now the channels peers opened are at most `limit` together, and

- strangers' channels (peers whose verified chains root in no authority the node trusts) at
  most `limit - limit // 4`: a quarter is kept for the members of the node's authorities,
  local callers and the nodes at the other end of the connections this node made (its hub,
  its configured peers: as the node's own connections keep a reserved share of the routing
  budget, review 53o, queues 1), so strangers filling the cap cannot lock them out;
- at its bound, a newcomer takes the place of a stranger's channel: of the network holding the
  most stranger channels (`source_network`: the addresses of an IPv4 /24, the /64s of an IPv6
  /48), the source holding the most, its oldest; a stranger newcomer's own network and source
  when they are among the most (a flood from one source churns its own channels). Not the least
  recently active: a PING keeps a channel active for nothing, so an attacker's channels would
  stay and quiet honest strangers' go;
- with no stranger's channel to give way (members and local callers hold the whole cap), a
  member of an authority within its share of the cap ("Shares of node-wide pools",
  `troth.node.shares`: the rule of the other node-wide pools, its code) takes the place of a
  channel of the authority holding the most over its share: its source holding the most, its
  oldest (review 54r, channels 1: an authority mints members for free, so one authority's
  members held the kept quarter and every stranger's place besides, and every other
  authority's members were refused). Local callers' channels and those of the nodes at the
  other end of this node's own connections count against the local callers' share and never
  give way; with no authority over its share, or the newcomer's at its own, it is refused.

The channels this node opened (its links, the channels it dials) are not counted: nobody else
can open or close them. A channel keeps the class it opened with (a stranger that shows a
member's chain later stays a stranger here, as its other limits do: review 53o, in-band 1).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from troth.node.shares import LOCAL, STRANGERS, Shares

__all__ = ["OpenChannels", "Place"]

E = TypeVar("E", bound=Hashable)


@dataclass(frozen=True, slots=True)
class _Held:
    stranger: bool
    source: str
    network: str
    authorities: frozenset[bytes]  # what it counts against (STRANGERS for a stranger)

    @property
    def gives_way(self) -> bool:
        """Whether a member of an authority within its share may take its place: a member's
        channel (not a stranger's, a local caller's, one counting against no authority)."""
        return not self.stranger and bool(self.authorities) and LOCAL not in self.authorities


@dataclass(frozen=True, slots=True)
class Place(Generic[E]):
    """What the cap says for a new channel: `admitted`, after closing `victim` if one is
    named (a stranger's channel that gives way); not admitted: refused."""

    admitted: bool
    victim: E | None = None


class OpenChannels(Generic[E]):
    """The open channels peers opened, counted against the node's cap (module docstring)."""

    def __init__(self, limit: int, trusted: Callable[[], int] = lambda: 1) -> None:
        self.limit = limit
        self._held: dict[E, _Held] = {}  # oldest first
        self._shares = Shares(trusted)  # the places each authority holds (review 54r)
        self.strangers = 0
        """Strangers' channels held now."""

    @property
    def strangers_bound(self) -> int:
        """The most channels strangers hold together: all but the members' reserved quarter."""
        return max(1, self.limit - self.limit // 4)

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, end: object) -> bool:
        return end in self._held

    def place(
        self,
        *,
        stranger: bool,
        source: str,
        network: str,
        authorities: frozenset[bytes] = frozenset(),
    ) -> Place[E]:
        """Whether a channel opened from `source` (of `network`) by a stranger (`stranger`) or
        a member of `authorities` ({LOCAL}: a local caller, the node at the other end of this
        node's own connection; none: counting against no authority) finds room: at once, after
        a stranger's or an authority's channel gives way, or not at all."""
        full = len(self._held) >= self.limit
        if not full and not (stranger and self.strangers >= self.strangers_bound):
            return Place(True)
        if self.strangers:
            return Place(
                True, self._victim(source if stranger else None, network if stranger else None)
            )
        if stranger or not self._shares.room(authorities, self.limit):
            return Place(False)  # at the cap, its authorities all at their share or past it
        victim = self._members_victim()
        return Place(victim is not None, victim)

    def add(
        self,
        end: E,
        *,
        stranger: bool,
        source: str,
        network: str,
        authorities: frozenset[bytes] = frozenset(),
    ) -> None:
        """`end` opened and holds a place (after `place` admitted it)."""
        if end not in self._held:
            held = _Held(stranger, source, network, _STRANGERS if stranger else authorities)
            self._held[end] = held
            self._shares.take(held.authorities)
            self.strangers += stranger

    def discard(self, end: E) -> None:
        """`end` closed: its place is given back (nothing for one that held none)."""
        held = self._held.pop(end, None)
        if held is not None:
            self._shares.release(held.authorities)
            self.strangers -= held.stranger

    def _victim(self, source: str | None, network: str | None) -> E:
        """The strangers' channel that gives way: of the network holding the most (`network`,
        the newcomer's, when it is among them), the source holding the most (`source` when it
        is among them), the oldest."""
        strangers = [(end, held) for end, held in self._held.items() if held.stranger]
        networks = collections.Counter(held.network for _, held in strangers)
        most = max(networks.values())
        if network is None or networks[network] != most:
            network = next(h.network for _, h in strangers if networks[h.network] == most)
        ours = [(end, held) for end, held in strangers if held.network == network]
        return _of_largest_source(ours, source)

    def _members_victim(self) -> E | None:
        """The member's channel that gives way for a member of an authority within its share:
        of the authority holding the most over its share (the first in the channels' age
        order among equals), the source holding the most, the oldest; None when no authority
        is over its share (review 54r, channels 1)."""
        share = self._shares.share(self.limit)
        members = [(end, held) for end, held in self._held.items() if held.gives_way]
        over = {
            a: n for _, h in members for a in h.authorities if (n := self._shares.held(a)) > share
        }
        if not over:
            return None
        most = max(over.values())
        authority = next(a for _, h in members for a in h.authorities if over.get(a) == most)
        return _of_largest_source([(e, h) for e, h in members if authority in h.authorities], None)


def _of_largest_source(ours: list[tuple[E, _Held]], source: str | None) -> E:
    """Of channels `ours` (oldest first), the oldest of the source holding the most (`source`
    when it is among them)."""
    sources = collections.Counter(held.source for _, held in ours)
    most = max(sources.values())
    if source is None or sources[source] != most:
        source = next(h.source for _, h in ours if sources[h.source] == most)
    return next(end for end, held in ours if held.source == source)


_STRANGERS: Final = frozenset({STRANGERS})
