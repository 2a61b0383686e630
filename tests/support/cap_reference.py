"""The node's cap on open channels as one plain reference model (review 74a, cap5): a full scan
over the channels held, written from `troth.node.channel_cap`'s module docstring and
docs/protocols.md ("Limits on a node", the open-channels row), not from its code, for a
differential check of `OpenChannels.place` and `admits`.

The rule: with room (below the cap, and for a stranger below the strangers' part) a newcomer is
admitted at once. Else, while strangers' channels are held, one of them gives way: ranked by
network (holding the most; a stranger newcomer's own when among the most; else the one whose
oldest is the oldest), then by source within it (likewise), then within that source a party's
behind a node first, the oldest, else the oldest. A newcomer behind node b (its source b's
connection) never takes the place of b's own (the channels of its source not behind a node):
a stranger is refused when b's own would go (a flood from one source churns its own, b's
parties never b's own); a member, whose channel never joins the strangers' ranking, gets the
victim of the ranking with b's own set aside (as for a member from elsewhere were they not
held), refused when they are all the strangers' channels. With no stranger's channel held, a
stranger is refused, and a member whose authorities all hold their share or more too; else an
authority over its share gives way, the one holding the most channels that give way (among
equals, the one whose oldest of them is the oldest, then the lowest digest): its source
holding the most (among equals the oldest), a party's behind a node first, else the oldest.
For a member behind node b, the same with b's own set aside, as for a member from elsewhere
were they not held (review 74h, cap6 1, the rule of the strangers' phase; before, refused where
b's own would go): over its share is what an authority holds besides b's own (review 74m, cap7
1: with b's own counted, they alone put an authority over its share and b's members took its
other hosts' places), each ranked by what it holds besides them, b's source by b's parties;
refused when no authority is over its share besides b's own."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from troth.node.shares import LOCAL


@dataclass(frozen=True, slots=True)
class Held:
    """One channel held, in order of opening (`authorities` empty for a stranger)."""

    end: int
    stranger: bool
    source: str
    network: str
    authorities: frozenset[bytes]
    behind: bool

    @property
    def gives_way(self) -> bool:
        """A member's channel that may give way (not a local caller's, not one of none)."""
        return not self.stranger and bool(self.authorities) and LOCAL not in self.authorities


def _top(
    channels: Sequence[Held], key: Callable[[Held], Hashable], mine: Hashable | None
) -> Hashable:
    """The key holding the most of `channels` (oldest first): `mine` when among the most, else
    the one whose oldest is the oldest (the first met)."""
    counts: dict[Hashable, int] = {}
    for held in channels:
        counts[key(held)] = counts.get(key(held), 0) + 1
    most = max(counts.values())
    if mine is not None and counts.get(mine) == most:
        return mine
    return next(key(h) for h in channels if counts[key(h)] == most)


def _in_source(channels: Sequence[Held], newcomer: Held) -> int | None:
    """The channel of `channels` (one source's, oldest first) that gives way: a party's behind
    a node first; else the oldest, but never the newcomer's node's own (None: refused)."""
    for held in channels:
        if held.behind:
            return held.end
    if newcomer.behind and channels[0].source == newcomer.source:
        return None
    return channels[0].end


def reference_place(
    held: Sequence[Held], newcomer: Held, limit: int, trusted: int
) -> tuple[bool, int | None]:
    """Whether `newcomer` is admitted at the cap `limit` (`trusted` authorities), and the end
    that gives way for it (module docstring), `held` oldest first."""
    strangers = [h for h in held if h.stranger]
    bound = max(1, limit - limit // 4)
    if len(held) < limit and not (newcomer.stranger and len(strangers) >= bound):
        return True, None
    if strangers:
        mine = newcomer.stranger
        if newcomer.behind and not mine:  # b's own set aside
            strangers = [h for h in strangers if h.behind or h.source != newcomer.source]
            if not strangers:
                return False, None
        network = _top(strangers, lambda h: h.network, newcomer.network if mine else None)
        inside = [h for h in strangers if h.network == network]
        source = _top(inside, lambda h: h.source, newcomer.source if mine else None)
        victim = _in_source([h for h in inside if h.source == source], newcomer)
        return victim is not None, victim
    share = max(1, limit // (trusted + 2))

    def count(authority: bytes) -> int:
        return sum(authority in h.authorities for h in held)

    if newcomer.stranger or all(count(a) + 1 > share for a in newcomer.authorities):
        return False, None
    members = [h for h in held if h.gives_way]
    over = {a for h in members for a in h.authorities if count(a) > share}
    if newcomer.behind:  # b's own set aside: over their share besides them (74m, cap7 1)
        own = [h for h in members if not h.behind and h.source == newcomer.source]
        members = [h for h in members if h.behind or h.source != newcomer.source]
        over = {a for a in over if count(a) - sum(a in h.authorities for h in own) > share}
    if not over:
        return False, None

    def rank(authority: bytes) -> tuple[int, int, bytes]:  # the oldest's order among equals
        its = [i for i, h in enumerate(members) if authority in h.authorities]
        return -len(its), its[0], authority

    authority = min(over, key=rank)
    members = [h for h in members if authority in h.authorities]
    source = _top(members, lambda h: h.source, None)
    victim = _in_source([h for h in members if h.source == source], newcomer)
    return victim is not None, victim
