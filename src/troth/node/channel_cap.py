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
- with no stranger's channel to give way (members and local callers hold the whole cap), the
  newcomer is refused.

The channels this node opened (its links, the channels it dials) are not counted: nobody else
can open or close them. A channel keeps the class it opened with (a stranger that shows a
member's chain later stays a stranger here, as its other limits do: review 53o, in-band 1).
"""

from __future__ import annotations

import collections
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["OpenChannels", "Place"]

E = TypeVar("E", bound=Hashable)


@dataclass(frozen=True, slots=True)
class _Held:
    stranger: bool
    source: str
    network: str


@dataclass(frozen=True, slots=True)
class Place(Generic[E]):
    """What the cap says for a new channel: `admitted`, after closing `victim` if one is
    named (a stranger's channel that gives way); not admitted: refused."""

    admitted: bool
    victim: E | None = None


class OpenChannels(Generic[E]):
    """The open channels peers opened, counted against the node's cap (module docstring)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: dict[E, _Held] = {}  # oldest first
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

    def place(self, *, stranger: bool, source: str, network: str) -> Place[E]:
        """Whether a channel opened from `source` (of `network`) by a stranger (`stranger`) or
        a member finds room: at once, after a stranger's channel gives way, or not at all."""
        full = len(self._held) >= self.limit
        if not full and not (stranger and self.strangers >= self.strangers_bound):
            return Place(True)
        if not self.strangers:
            return Place(False)
        return Place(
            True, self._victim(source if stranger else None, network if stranger else None)
        )

    def add(self, end: E, *, stranger: bool, source: str, network: str) -> None:
        """`end` opened and holds a place (after `place` admitted it)."""
        if end not in self._held:
            self._held[end] = _Held(stranger, source, network)
            self.strangers += stranger

    def discard(self, end: E) -> None:
        """`end` closed: its place is given back (nothing for one that held none)."""
        held = self._held.pop(end, None)
        if held is not None:
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
        sources = collections.Counter(held.source for _, held in ours)
        most = max(sources.values())
        if source is None or sources[source] != most:
            source = next(h.source for _, h in ours if sources[h.source] == most)
        return next(end for end, held in ours if held.source == source)
