"""Which accepted TCP connection gives way to a new one at the connection cap (sans-IO: the
connections and their counts are passed in; docs/protocols.md, "TCP transport")."""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable, Mapping
from typing import Protocol, TypeVar

from troth.transport.frameless import Frameless
from troth.transport.liveness import Liveness

__all__ = ["Refusals", "ShieldSpends", "eviction_candidate"]


class _Candidate(Protocol):
    @property
    def host(self) -> str: ...
    @property
    def network(self) -> str: ...
    @property
    def progress(self) -> int: ...
    @property
    def frames_read(self) -> int: ...
    @property
    def liveness(self) -> Liveness: ...


_C = TypeVar("_C", bound=_Candidate)


def _active(connection: _Candidate) -> float:
    """When the sweep last saw `connection` make progress (`liveness.last_active`)."""
    return connection.liveness.last_active


class Refusals:
    """A scan's answer that no accepted connection gives way, remembered while it holds, for any
    newcomer (review 60f, listener 1: each newcomer at the cap scanned the whole table, ~0.4 ms at
    1,024, and a refused one is not counted, so one address opening connection after connection made
    the node scan for each). What the scan saw holds until a connection first makes progress
    (`forget`) or the sweep looks at it (when each last made progress: `forget`), raised as a
    connection comes (`admitted`; one gone only lowers it: review 67p, transport 2): the most
    connections one address and one network hold, and when the idlest connection could give way
    (idle `evict_idle_after`). A newcomer then finds none to give way while its address and network
    hold no fewer than two less than those; and, with its network holding no fewer than the scanned
    newcomer's, its address no fewer than two less than the most one address of such a network holds
    (`fair`: the addresses the fair share may take from, review 62f, listener 2; without it each
    newcomer that rule refused scanned again: review 62f, listener 3)."""

    __slots__ = ("_fair", "_floor", "_most", "_theirs", "_until")

    def __init__(self) -> None:
        self._most: tuple[int, int] | None = None
        self._until = -math.inf
        self._fair = self._theirs = self._floor = 0

    def forget(self) -> None:
        """The table changed, or the sweep looked at it: the next newcomer scans it again."""
        self._most = None

    def admitted(self, counts: tuple[int, int], shielded_until: float) -> None:
        """A connection was accepted, bringing no frame yet, its address and network now
        holding `counts`, shielded until `shielded_until` (review 67p, transport 2: forgetting
        at each change, one address refreshing its own connection mid-handshake between the
        connections of a network spent its shielded eviction had the node scan the table for
        each of those). What a scan saw still holds, raised to bound the newcomer: the most one
        address and one network hold; the most a fair share's address holds (its network may
        reach the scanned newcomer's only now, so any of its addresses: as many as the most);
        the newcomer's network's refusal floor (it gives way to a newcomer whose network holds
        no more, as a kept one); its shield. A connection gone only lowers what the scan saw
        (the newcomers it answers for a scan would refuse too), and one making its first
        progress or the sweep still forgets it (its idle clock may be earlier)."""
        most = self._most
        if most is None:
            return
        host, network = counts
        self._most = most = (max(most[0], host), max(most[1], network))
        if network >= self._theirs:
            self._fair = max(self._fair, host if network > self._theirs else most[0])
        self._floor = max(self._floor, network + 1)
        self._until = min(self._until, shielded_until)

    def known(self, counts: tuple[int, int], now: float, spent: bool = False) -> bool:
        """Whether a newcomer whose address and network hold `counts` connections at `now` is
        known to find no connection to give way (`spent`: its network spent its shielded
        eviction and holds no frameless connection, so none kept gives way to it whatever
        its network holds: review 67c, transport 1)."""
        most = self._most
        if most is None or now >= self._until or (counts[1] < self._floor and not spent):
            return False
        address = self._fair if counts[1] >= self._theirs else most[0]
        return address < counts[0] + 2 and most[1] < counts[1] + 2

    def remember(
        self,
        most: tuple[int, int],
        until: float,
        fair: tuple[int, int] | None = None,
        floor: int = 0,
    ) -> None:
        """A scan found no frameless connection to give way, `most` connections held by one
        address and by one network, and the idlest connection (or a frameless one kept)
        giving way at `until`; `fair`:
        (the most one address holds of the networks holding at least n, n) for its newcomer's
        network's n; `floor`: with frameless connections kept (their networks hold fewer than
        its newcomer's: review 66v, transport 1), what a newcomer's network must hold (a newcomer
        whose network holds fewer may take one of them, and scans; one past the most a kept
        one's network holds: review 67c, transport 1, a newcomer whose network spent its
        shielded eviction was refused whatever its network held)."""
        self._most, self._until, self._floor = most, until, floor
        self._fair, self._theirs = fair if fair is not None else (most[0], 0)


class ShieldSpends:
    """The networks whose newcomer evicted another network's connection within its shield, and
    when (review 67c, transport 1): a network holding no connection holds no more than any, so
    its newcomer evicts a client mid-handshake; one address did it again and again (its junk
    connection evicted by the next honest newcomer, its network holding none again), every
    client that got in killed before its message 3. A network's newcomers evict another
    network's shielded connection at most once per shield (`first_frame_timeout`). At most
    `kept` networks are remembered: while that many are, every network counts as spent (none
    forgotten early: honest newcomers' spends pushed the attacker's out, and it evicted again)."""

    __slots__ = ("_at", "kept", "shield")

    def __init__(self, shield: float, kept: int) -> None:
        self.shield, self.kept = shield, kept
        self._at: collections.OrderedDict[str, float] = collections.OrderedDict()  # oldest
        # first (OrderedDict: its oldest taken out in O(1), where a dict's front fills with
        # deleted slots)

    def __len__(self) -> int:
        return len(self._at)

    def spent(self, network: str, now: float) -> bool:
        """Whether `network`'s newcomers evicted another network's shielded connection less
        than a shield before `now`, or `kept` networks' did."""
        at = self._at
        while at and now - next(iter(at.values())) >= self.shield:
            at.popitem(last=False)
        return network in at or len(at) >= self.kept

    def spend(self, network: str, now: float) -> None:
        """`network`'s newcomer evicted another network's shielded connection at `now` (when
        `kept` are remembered, none more is: all count as spent)."""
        at = self._at
        if network in at or len(at) < self.kept:
            at[network] = now
            at.move_to_end(network)


def eviction_candidate(
    accepted: Iterable[_C],
    newcomer: _C,
    per_host: Mapping[str, int],
    per_network: Mapping[str, int],
    *,
    strict: bool,
    evict_idle_after: float,
    refusals: Refusals | None = None,
    unproven: Frameless[_C] | None = None,
    shielded_for: float = 0.0,
    spent: bool = False,
) -> _C | None:
    """The accepted connection (`accepted`, oldest first; `per_host` and `per_network` count them by
    source address and network) to give up for `newcomer`: of those that brought no frame yet
    (`strict`, at a node: made no progress yet, as junk makes none) whose network holds no fewer
    connections than the newcomer's, or that opened `shielded_for` ago or more (review 66v,
    transport 1: one network's stranger, its handshakes done at once, evicted each client from
    another network before its message 3; the transport gives its `first_frame_timeout`, so junk
    from a small network is shielded no longer than a handshake may take; when the first by
    this rule is shielded, the oldest if past its shield, else one of the newcomer's own
    network, else the others': review 66w, transport 1, the index took the newcomer's own
    network's while junk past its shield was kept), of the network
    holding the most such connections, the oldest of its source address holding the most (one
    network's addresses, one each, had a newcomer of another give way: review 62f, listener 1; a
    flood of connections from one address gives up its own, not a newcomer's from another address
    accepted before its first frame arrived: review 41b, connections 1; its active connections not
    counted, so a busy source is not "the most" for its next connection, which an attacker's many
    addresses, each holding fewer, then evicted at once: review 43a, connections 1); else, when
    another source address holds at least two more connections than the newcomer's (a fair share:
    many addresses each under the per-source cap cannot lock out a new one), of those whose network
    holds no fewer than the newcomer's (review 62f, listener 2: one /48's newcomers took a small
    network's address's connections while their own network held the most), the connection idle the
    longest of the one holding the most; else, the same between networks (`source_network`: one
    party holds the /64s of a /48, or the addresses of a /24, as cheaply as one of them, each a
    source holding one connection: review 48h, sources 1), the idlest connection of the network
    holding at least two more than the newcomer's; else the one idle the longest if idle at least
    `evict_idle_after` (review 50e, idle 2: at a node, progress). What the scan saw is remembered in
    `refusals`, if given (a victim found is evicted, and the table changes). `unproven`, if given:
    the accepted connections that brought no frame (made no progress) yet, by source address, which
    the transport takes each out of as it first makes progress; while it holds any, the victim is
    its `Frameless.victim`, found without a look at
    the others (review 60f, listener 1: a newcomer evicting the frameless one before it, over
    and over, scanned the whole table each time; review 60i, listener 2: then it looked at
    every frameless one, ~0.2 ms at 1,024). (One that made progress unseen is taken out, for
    good: what brought one stays past this rule.)"""

    def proven(connection: _C) -> bool:
        return bool(connection.progress if strict else connection.frames_read)

    mine, theirs = per_host.get(newcomer.host, 0), per_network.get(newcomer.network, 0)
    now = newcomer.liveness.opened_at

    def shielded(connection: _C) -> bool:  # (66v, transport 1)
        return now - connection.liveness.opened_at < shielded_for

    def gives_way(connection: _C) -> bool:  # a frameless one, to this newcomer (66v, 1)
        if not shielded(connection) or connection.network == newcomer.network:
            return True
        return not spent and per_network.get(connection.network, 0) >= theirs  # (67c, 1)

    while unproven:
        victim = unproven.victim()
        if victim is None:
            break
        if proven(victim):
            unproven.discard(victim)
            continue
        if gives_way(victim):
            return victim
        oldest = unproven.oldest()  # shielded: the oldest if past its shield (66w, 1)
        if oldest is not None and proven(oldest):
            unproven.discard(oldest)
            continue
        if oldest is not None and not shielded(oldest):
            return oldest
        victim = unproven.victim(newcomer.network)  # the newcomer's network's own, if any
        if victim is None or proven(victim):  # (66v, 1: no scan each newcomer)
            break  # (a scan finds another's, if any)
        return victim
    accepted = list(accepted)
    idlest: _C | None = None
    frameless: list[_C] = []  # oldest first
    for connection in accepted:
        if proven(connection):
            if idlest is None or _active(connection) < _active(idlest):
                idlest = connection
        else:
            frameless.append(connection)
    kept, floor = math.inf, 0  # when the first frameless one kept gives way; what a newcomer's
    # network must hold for none to (one past the most a kept one's network holds: 67c, 1)
    if frameless:  # as the index would answer (66w, transport 1)
        victim = _frameless_victim(frameless)
        if gives_way(victim):
            return victim
        if not shielded(frameless[0]):
            return frameless[0]
        own = [c for c in frameless if c.network == newcomer.network]
        eligible = own or [c for c in frameless if gives_way(c)]
        if eligible:
            return _frameless_victim(eligible)
        kept = frameless[0].liveness.opened_at + shielded_for
        floor = 1 + max(per_network.get(c.network, 0) for c in frameless)
    most = max(per_host.values())
    network, most_network = max(per_network.items(), key=lambda item: item[1])
    top = None  # of the addresses whose network holds no fewer than the newcomer's (listener 2)
    if most >= mine + 2:
        top = _fair_host(accepted, per_host, per_network, theirs)
    if refusals is not None and idlest is not None:
        fair = (per_host[top] if top is not None else 0, theirs) if most >= mine + 2 else None
        until = min(_active(idlest) + evict_idle_after, kept)
        refusals.remember((most, most_network), until, fair, floor)
    if top is not None and per_host[top] >= mine + 2:
        return min((c for c in accepted if c.host == top), key=_active)
    if most_network >= per_network.get(newcomer.network, 0) + 2:
        return min((c for c in accepted if c.network == network), key=_active)
    if idlest is not None and now - _active(idlest) >= evict_idle_after:
        return idlest
    return None


def _fair_host(
    accepted: list[_C], per_host: Mapping[str, int], per_network: Mapping[str, int], theirs: int
) -> str | None:
    """The source address holding the most connections of those whose network holds at least
    `theirs` (the newcomer's network's count): a newcomer from the network holding the most
    took the connections of a smaller network's address (review 62f, listener 2)."""
    networks = {connection.host: connection.network for connection in accepted}
    fair = (host for host in per_host if per_network.get(networks.get(host, ""), 0) >= theirs)
    return max(fair, key=per_host.__getitem__, default=None)


def _frameless_victim(frameless: list[_C]) -> _C:
    """Of `frameless` (oldest first), of the network holding the most, the oldest of its source
    address holding the most (review 62f, listener 1: the network was not weighed)."""
    networks = collections.Counter(connection.network for connection in frameless)
    most = max(networks.values())
    network = next(c.network for c in frameless if networks[c.network] == most)
    inside = [c for c in frameless if c.network == network]
    waiting = collections.Counter(connection.host for connection in inside)
    most_waiting = max(waiting.values())
    return next(c for c in inside if waiting[c.host] == most_waiting)
