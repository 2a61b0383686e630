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

import itertools
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["OpenChannels", "Place"]

E = TypeVar("E", bound=Hashable)


@dataclass(frozen=True, slots=True)
class _Held:
    stranger: bool
    source: str
    network: str
    seq: int  # its order of opening (the oldest the lowest)


@dataclass(frozen=True, slots=True)
class Place(Generic[E]):
    """What the cap says for a new channel: `admitted`, after closing `victim` if one is
    named (a stranger's channel that gives way); not admitted: refused."""

    admitted: bool
    victim: E | None = None


class OpenChannels(Generic[E]):
    """The open channels peers opened, counted against the node's cap (module docstring).
    Strangers' channels are kept by network and by source, oldest first, so a victim is picked
    from counts, not a scan of every stranger's channel (review 54o, channels 2: ~0.7 ms with
    3,072 of them, twice per handshake at the cap)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: dict[E, _Held] = {}
        self._seq = itertools.count()
        self._networks: dict[str, dict[E, None]] = {}  # strangers' channels, oldest first
        self._sources: dict[str, dict[str, dict[E, None]]] = {}  # by network, then source
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

    def admits(self, *, stranger: bool) -> bool:
        """Whether a channel of a stranger (`stranger`) or a member finds room, at once or in
        a stranger's place, without picking that place (`place` does: the handshake's check at
        message 3 needs only this; review 54o, channels 2)."""
        return self._room(stranger) or self.strangers > 0

    def place(self, *, stranger: bool, source: str, network: str) -> Place[E]:
        """Whether a channel opened from `source` (of `network`) by a stranger (`stranger`) or
        a member finds room: at once, after a stranger's channel gives way, or not at all."""
        if self._room(stranger):
            return Place(True)
        if not self.strangers:
            return Place(False)
        return Place(
            True, self._victim(source if stranger else None, network if stranger else None)
        )

    def _room(self, stranger: bool) -> bool:
        full = len(self._held) >= self.limit
        return not full and not (stranger and self.strangers >= self.strangers_bound)

    def add(self, end: E, *, stranger: bool, source: str, network: str) -> None:
        """`end` opened and holds a place (after `place` admitted it)."""
        if end in self._held:
            return
        self._held[end] = _Held(stranger, source, network, next(self._seq))
        if stranger:
            self.strangers += 1
            self._networks.setdefault(network, {})[end] = None
            self._sources.setdefault(network, {}).setdefault(source, {})[end] = None

    def discard(self, end: E) -> None:
        """`end` closed: its place is given back (nothing for one that held none)."""
        held = self._held.pop(end, None)
        if held is None or not held.stranger:
            return
        self.strangers -= 1
        network, source = held.network, held.source
        ends = self._networks[network]
        del ends[end]
        if not ends:
            del self._networks[network]
        sources = self._sources[network]
        ours = sources[source]
        del ours[end]
        if not ours:
            del sources[source]
            if not sources:
                del self._sources[network]

    def _victim(self, source: str | None, network: str | None) -> E:
        """The strangers' channel that gives way: of the network holding the most (`network`,
        the newcomer's, when it is among them; else the one of those whose oldest channel is
        the oldest), the source holding the most (`source` likewise), its oldest."""
        network = self._most(self._networks, network)
        sources = self._sources[network]
        source = self._most(sources, source)
        return next(iter(sources[source]))

    def _most(self, groups: Mapping[str, dict[E, None]], mine: str | None) -> str:
        """The key of `groups` holding the most channels: `mine` when it is among them, else
        the one whose oldest channel is the oldest."""
        most = max(len(ends) for ends in groups.values())
        if mine is not None and len(groups.get(mine, ())) == most:
            return mine
        return min(
            (key for key, ends in groups.items() if len(ends) == most),
            key=lambda key: self._held[next(iter(groups[key]))].seq,
        )
