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
  when they are among the most (a flood from one source churns its own channels). Within the
  source that gives way, a party's behind the node at the other end of a connection (`behind`:
  its message 1 forwarded by that node, `channel_sources.behind_other_end`) goes first, the
  oldest (a source of their own, `<source> behind`, let one host hold two sources in the
  ranking and twice its neighbours' places: review 73k, kept 1). A party behind node b never
  takes the place of b's own channels (those of its source not behind a node; kept 2): a
  stranger is refused where one of them would go (b's parties churn b's parties, never b's
  own); a member, whose channel never joins the strangers' ranking, takes the place of the
  channel that would give way for a member from elsewhere were b's own not held (the ranking
  with them set aside), refused when they are all the strangers' channels, never let to take
  a member's place instead (review 73o, cap2 1: it took another host's). Review 73r, cap3 1:
  refused, every member behind b was while b held the most; 73u, cap4 1, 73x, last 1, and 74a,
  cap5 1: counted for b's network (74a: while one of b's parties was held there), b's own made
  a neighbour of b pay for b's members while another network holding more without them stayed.
  Not the least recently active: a PING keeps a channel active for nothing, so an attacker's
  channels would stay and quiet honest strangers' go;
- with no stranger's channel to give way (members and local callers hold the whole cap), a
  member of an authority within its share of the cap ("Shares of node-wide pools",
  `troth.node.shares`: the rule of the other node-wide pools, its code) takes the place of a
  channel of the authority holding the most over its share: its source holding the most, its
  oldest, a party's behind a node first (review 54r, channels 1: an authority mints members
  for free, so one authority's members held the kept quarter and every stranger's place
  besides, and every other authority's members were refused). For a member behind node b, as
  above, the same with b's own set aside, as for a member from elsewhere were they not held:
  the authorities over their share besides b's own, ranked by what they hold besides them,
  b's source by b's parties (the next source of that authority gives way, or the next
  authority over its share), refused when none is over its share besides b's own; never one
  of b's own for b's party (review 74h, cap6 1: refused wherever b's own would go, b's
  members, their authority within its share, were locked out while b's own held the most of
  the authority over its share; review 74m, cap7 1: over its share with b's own counted, b's
  own alone put an authority over and b's members took every place of its other hosts, within
  its share between them, round after round as they came back). A stranger is
  refused. Local callers' channels and those of the nodes at the other end of this node's
  own connections count against the local callers' share and never give way; with no
  authority over its share, or the newcomer's at its own, it is refused.

The channels this node opened (its links, the channels it dials) are not counted: nobody else
can open or close them. A channel keeps the class it opened with (a stranger that shows a
member's chain later stays a stranger here, as its other limits do: review 53o, in-band 1).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypedDict, TypeVar

from troth.node.shares import LOCAL, STRANGERS, Shares
from troth.ranked import Ranked

__all__ = ["OpenChannels", "Opener", "Place"]

E = TypeVar("E", bound=Hashable)
K = TypeVar("K", bound=Any)  # a network, a source (str), an authority (bytes): ordered


@dataclass(frozen=True, slots=True)
class _Held:
    stranger: bool
    source: str
    network: str
    authorities: frozenset[bytes]  # what it counts against (STRANGERS for a stranger)
    seq: int  # its order of opening (the oldest the lowest)
    behind: bool  # a party's behind the node at the other end of a connection (73k, kept)

    @property
    def gives_way(self) -> bool:
        """Whether a member of an authority within its share may take its place: a member's
        channel (not a stranger's, a local caller's, one counting against no authority)."""
        return not self.stranger and bool(self.authorities) and LOCAL not in self.authorities


class Opener(TypedDict):
    """Who opens a channel, as `OpenChannels.place`, `add` and `admits` take it (keywords)."""

    stranger: bool
    source: str
    network: str
    authorities: frozenset[bytes]
    behind: bool


@dataclass(frozen=True, slots=True)
class Place(Generic[E]):
    """What the cap says for a new channel: `admitted`, after closing `victim` if one is
    named (a stranger's or a member's channel that gives way); not admitted: refused."""

    admitted: bool
    victim: E | None = None


class OpenChannels(Generic[E]):
    """The open channels peers opened, counted against the node's cap (module docstring).
    Strangers' channels are kept by network and by source, oldest first, and members' that
    give way by authority and by source, so a victim is picked from counts, not a scan of
    every channel (review 54o, channels 2: ~0.7 ms with 3,072 of them, twice per handshake at
    the cap), the groups holding the most kept ranked (`Ranked`; review 60f, listener 4).
    `trusted` is the number of authorities the node trusts now (review 54r)."""

    def __init__(self, limit: int, trusted: Callable[[], int] = lambda: 1) -> None:
        self.limit = limit
        self._held: dict[E, _Held] = {}
        self._seq = itertools.count()
        self._networks: Ranked[str, E] = Ranked(self._seq_of)  # strangers' channels
        self._sources: dict[str, Ranked[str, E]] = {}  # by network, then source
        self._members: Ranked[bytes, E] = Ranked(self._seq_of)  # members' that give way
        self._member_sources: dict[bytes, Ranked[str, E]] = {}  # by authority, then source
        self._shares = Shares(trusted)  # the places each authority holds (review 54r)
        self._behind: dict[tuple[Any, str], dict[E, None]] = {}
        """The channels of parties behind a node, by network or authority and source, oldest
        first: within the source that gives way, they go first (review 73k, kept 1 and 2)."""
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

    def admits(
        self,
        *,
        stranger: bool,
        source: str = "",
        network: str = "",
        authorities: frozenset[bytes] = frozenset(),
        behind: bool = False,
    ) -> bool:
        """Whether a channel of a stranger (`stranger`) or a member of `authorities` (as for
        `place`) finds room, at once, in a stranger's place, or with its authorities within
        their share and an authority over its share to give way, without picking that place
        (`place` does: the handshake's check at message 3 needs only this; review 54o,
        channels 2; review 54r, channels 1), but for a party behind a node (`behind`), which
        may find none of its own source's to give way (review 73k, kept 2; a member: none
        but its node's own, review 73r, cap3 1, and review 74h, cap6 1, in the members'
        phase), nor then a member's while strangers' channels are held (review 73o, cap2 1).
        It agrees with `place`: a member it admits is not refused as its channel is taken in,
        its handshake completed for nothing (review 54w, channels 1: with no authority over
        its share it was, each time)."""
        if self._room(stranger):
            return True
        if self.strangers:  # a stranger's place gives way (picked once, as it is taken: `place`)
            return not behind or self._victim(stranger, source, network, behind) is not None
        if stranger or not self._shares.room(authorities, self.limit):
            return False
        return bool(self._over()) if not behind else self._members_victim(source, True) is not None

    def place(
        self,
        *,
        stranger: bool,
        source: str,
        network: str,
        authorities: frozenset[bytes] = frozenset(),
        behind: bool = False,
    ) -> Place[E]:
        """Whether a channel opened from `source` (of `network`) by a stranger (`stranger`) or
        a member of `authorities` ({LOCAL}: a local caller, the node at the other end of this
        node's own connection; none: counting against no authority) finds room: at once, after
        a stranger's or an authority's channel gives way, or not at all. `behind`: opened by
        a party behind the node at the other end of a connection (module docstring)."""
        if self._room(stranger):
            return Place(True)
        if self.strangers:  # never a member's place while a stranger's is held (73o, cap2 1)
            victim = self._victim(stranger, source, network, behind)
            return Place(victim is not None, victim)
        if stranger or not self._shares.room(authorities, self.limit):
            return Place(False)  # at the cap, its authorities all at their share or past it
        victim = self._members_victim(source, behind)
        return Place(victim is not None, victim)

    def _room(self, stranger: bool) -> bool:
        full = len(self._held) >= self.limit
        return not full and not (stranger and self.strangers >= self.strangers_bound)

    def add(
        self,
        end: E,
        *,
        stranger: bool,
        source: str,
        network: str,
        authorities: frozenset[bytes] = frozenset(),
        behind: bool = False,
    ) -> None:
        """`end` opened and holds a place (after `place` admitted it)."""
        if end in self._held:
            return
        counted = _STRANGERS if stranger else authorities
        held = _Held(stranger, source, network, counted, next(self._seq), behind)
        self._held[end] = held
        self._shares.take(counted)
        if stranger:
            self.strangers += 1
            _file(self._networks, self._sources, network, source, end)
        elif held.gives_way:
            for authority in counted:
                _file(self._members, self._member_sources, authority, source, end)
        for group in self._groups(held) if behind else ():
            self._behind.setdefault((group, source), {})[end] = None

    def discard(self, end: E) -> None:
        """`end` closed: its place is given back (nothing for one that held none). It is taken
        out of its groups before it is forgotten: while a member's channel leaves its first
        authority's group, the ranking may look at its second's, whose oldest it may be
        (review 60i, channels 1: KeyError, the close half done)."""
        held = self._held.get(end)
        if held is None:
            return
        self._shares.release(held.authorities)
        for group in self._groups(held) if held.behind else ():
            ends = self._behind[group, held.source]
            del ends[end]
            if not ends:
                del self._behind[group, held.source]
        if held.stranger:
            self.strangers -= 1
            _unfile(self._networks, self._sources, held.network, held.source, end)
        elif held.gives_way:
            for authority in held.authorities:
                _unfile(self._members, self._member_sources, authority, held.source, end)
        del self._held[end]

    def _seq_of(self, end: E) -> int:
        """`end`'s order of opening."""
        return self._held[end].seq

    def _groups(self, held: _Held) -> tuple[Any, ...]:
        """The groups a channel is ranked in: its network (a stranger's), its authorities (a
        member's that gives way), none."""
        if held.stranger:
            return (held.network,)
        return tuple(held.authorities) if held.gives_way else ()

    def _victim(self, stranger: bool, source: str, network: str, behind: bool) -> E | None:
        """The strangers' channel that gives way for a newcomer from `source` (of `network`; a
        stranger's, `stranger`, or a member's): of the network holding the most (a stranger's
        own when among them; else the one whose oldest is the oldest), the source holding the
        most in it (likewise), its channel that gives way (`_of`); for a member behind node b
        holding channels of its own, the same with them set aside (`_aside`)."""
        if behind and not stranger and self._own(network, source):
            return self._aside(network, source)
        network_of = self._networks.most(network if stranger else None)
        sources = self._sources[network_of]
        chosen = sources.most(source if stranger else None)
        return self._of(sources.groups[chosen], (network_of, chosen), source, behind)

    def _own(self, network: str, source: str) -> int:
        """How many strangers' channels `source` (of `network`) holds of its own, not a
        party's behind the node there."""
        sources = self._sources.get(network)
        held = len(sources.groups.get(source, ())) if sources is not None else 0
        return held - len(self._behind.get((network, source), ()))

    def _aside(self, network: str, source: str) -> E | None:
        """The strangers' channel that gives way for a member behind the node at `source` (of
        `network`) with that node's own set aside, as for a member from elsewhere were they
        not held: `network` ranked by what it holds besides them, `source` by its parties
        (review 73r, cap3 1; 73u, cap4 1; 73x, last 1; 74a, cap5 1: with one of its parties
        held, they counted); None when they are all the strangers' channels. Its cost: the
        rankings' (`network`'s oldest besides them: `_besides`)."""
        ends = self._networks.groups[network]
        rest = len(ends) - self._own(network, source)
        oldest = self._besides(self._sources[network], network, source) if rest else 0
        network_of = self._networks.most_as(network, rest, oldest)
        if network_of is None:
            return None
        sources = self._sources[network_of]
        if network_of != network:
            chosen: str | None = sources.most(None)
        else:
            chosen = self._by_parties(sources, network, source)
        if chosen is None:  # (not met: `network` holds channels besides them)
            return None
        return self._of(sources.groups[chosen], (network_of, chosen), source, True)

    def _besides(self, sources: Ranked[str, E], group: Any, source: str) -> int:
        """The order of the oldest of `group`'s channels (`sources`: a network's strangers',
        an authority's members' that give way, by source) that is not `source`'s own (not a
        party's behind the node there): the oldest of its other sources' or of `source`'s
        parties, from the heap of its sources by their oldest (`Ranked.oldest_but`; review
        74m, cap7 2: a walk past `source`'s own, up to the per-source limit, 256, in each
        authority tied at the most, 5,120 channels a check with 20); 0: none."""
        parties = self._behind.get((group, source))
        first = self._seq_of(next(iter(parties))) if parties else None
        found = [seq for seq in (sources.oldest_but(source), first) if seq is not None]
        return min(found, default=0)

    def _by_parties(self, sources: Ranked[str, E], group: Any, source: str) -> str | None:
        """The source holding the most of `group`'s (`sources`) with `source` ranked by the
        parties behind the node there, its own set aside (`Ranked.most_as`; None: none)."""
        parties = self._behind.get((group, source), {})
        first = self._seq_of(next(iter(parties))) if parties else 0
        return sources.most_as(source, len(parties), first)

    def _of(self, ends: dict[E, None], key: tuple[Any, str], source: str, behind: bool) -> E | None:
        """The channel of source `key[1]` (`ends`, oldest first) that gives way for a newcomer
        from `source` (`behind`: a party behind a node): a party behind a node's first, the
        oldest; else the oldest, but for a party behind a node of that same source, for whom
        none gives way (review 73k, kept 2: its node's own channel gave way to it)."""
        parties = self._behind.get(key)
        if parties:
            return next(iter(parties))
        return None if behind and key[1] == source else next(iter(ends))

    def _members_victim(self, source: str, behind: bool) -> E | None:
        """The member's channel that gives way for a member of an authority within its share
        (from `source`, `behind` as for `place`): of the authorities over their share, the one
        holding the most channels that give way (among equals, the one whose oldest of them is
        the oldest, then the lowest digest), the source holding the most, its oldest (`_of`);
        None when no authority is over its share (review 54r, channels 1). For a member behind
        node b, the same with b's own set aside, as for a member from elsewhere were they not
        held (review 74h, cap6 1, as in the strangers' phase: `_aside`): the authorities over
        their share besides b's own (review 74m, cap7 1: b's own counted, they alone put an
        authority over and b's members took every place of its other hosts, within its share
        between them), ranked by what they hold besides them, b's source by b's parties; None
        when there is none. Its cost: the authorities', and for those tied at the most, their
        oldest besides b's own (`_besides`, a heap's: review 74m, cap7 2)."""
        share = self._shares.share(self.limit)
        held: dict[bytes, int] = {}
        for authority, ends in self._members.groups.items():
            own = self._members_own(authority, source) if behind else 0
            if self._shares.held(authority) - own > share:
                held[authority] = len(ends) - own
        most = max(held.values(), default=0)
        if not most:
            return None

        def oldest(authority: bytes) -> int:  # (its oldest besides b's own for b's member)
            sources = self._member_sources[authority]
            if behind:
                return self._besides(sources, authority, source)
            return self._seq_of(next(iter(self._members.groups[authority])))

        tied = [a for a, count in held.items() if count == most]
        authority = min(tied, key=lambda a: (oldest(a), a)) if len(tied) > 1 else tied[0]
        sources = self._member_sources[authority]
        chosen = self._by_parties(sources, authority, source) if behind else sources.most(None)
        if chosen is None:  # (not met: `authority` holds channels besides b's own)
            return None
        return self._of(sources.groups[chosen], (authority, chosen), source, behind)

    def _members_own(self, authority: bytes, source: str) -> int:
        """How many of `authority`'s members' channels that give way `source` holds of its
        own, not a party's behind the node there."""
        sources = self._member_sources[authority]
        held = len(sources.groups.get(source, ()))
        return held - len(self._behind.get((authority, source), ())) if held else 0

    def _over(self) -> dict[bytes, dict[E, None]]:
        """The members' channels that give way, of each authority holding more than its share
        (these channels are among those it holds)."""
        share = self._shares.share(self.limit)
        members = self._members.groups
        return {a: ends for a, ends in members.items() if self._shares.held(a) > share}


def _file(
    groups: Ranked[K, E],
    subgroups: dict[K, Ranked[str, E]],
    key: K,
    source: str,
    end: E,
) -> None:
    """`end` (of `source`) kept under `key` in `groups` and, by source, in `subgroups`."""
    groups.add(key, end)
    sources = subgroups.get(key)
    if sources is None:
        sources = subgroups[key] = Ranked(groups._seq, firsts=True)
    sources.add(source, end)


def _unfile(
    groups: Ranked[K, E],
    subgroups: dict[K, Ranked[str, E]],
    key: K,
    source: str,
    end: E,
) -> None:
    """`end` (of `source`) no longer kept under `key` (groups left empty are forgotten)."""
    groups.remove(key, end)
    sources = subgroups[key]
    sources.remove(source, end)
    if not sources:
        del subgroups[key]


_STRANGERS: Final = frozenset({STRANGERS})
