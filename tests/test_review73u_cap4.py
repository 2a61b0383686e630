"""Review 73u, cap4: review 73r's victim for a member behind a node at the node's cap on open
channels (`troth.node.channel_cap`), attacked.

Cap4 1 (low: a neighbour churned by a node's members). For a member behind node b, b's own
strangers' channels were set aside, but they still counted for b's network when the network
that gives way was picked (73r: the source holding the most after b's in b's network, else
the network holding the most after b's). So a neighbour c in b's network (an IPv4 /24, an
IPv6 /48) holding one channel gave way to b's members round after round, while another
network's sources holding two each stayed: b's spared channels made its network the top and
steered its parties' evictions onto its neighbours (c's return as a stranger took b's own
now and then, but c was the only victim of six members in a row). Now b's own are set aside
in the networks' ranking too (b's network ranked by what it holds besides b's): the network
holding the most without them pays, the source holding the most in it, as the ranking
means. Both tests failed on 12ad4bac.
"""

from __future__ import annotations

import itertools
import random

from troth.node.channel_cap import OpenChannels, Opener

A0 = frozenset({b"a0"})


def test_b_s_members_churn_out_a_neighbour_holding_less_than_another_network() -> None:
    """73u cap4 1: cap 16 (strangers' part 12): b holds five strangers' channels of its own in
    nb, its neighbour c one, network nd four (sources d and e, two each); members of a0 the
    rest. Six members behind b open channels in turn, c coming back as a stranger after each
    time it gives way: c gave way all six times (nb, with b's own, held the most or tied as
    the oldest), d and e, holding more than c, never to b's members. Now nd's d and e, two
    each, give way first (nd holds the most without b's), then c and e, one each, in turn as
    the oldest of the networks tied."""
    cap: OpenChannels[int] = OpenChannels(16)
    ends = itertools.count()
    where: dict[int, str] = {}
    for source, network, count in (("b", "nb", 5), ("c", "nb", 1), ("d", "nd", 2), ("e", "nd", 2)):
        for _ in range(count):
            end = next(ends)
            cap.add(end, stranger=True, source=source, network=network)
            where[end] = source
    while len(cap) < cap.limit:
        cap.add(next(ends), stranger=False, source="m", network="nm", authorities=A0)
    member = Opener(stranger=False, source="b", network="nb", authorities=A0, behind=True)
    c = Opener(stranger=True, source="c", network="nb", authorities=frozenset(), behind=False)
    gave_way: list[str] = []
    for _ in range(6):
        victim = cap.place(**member).victim
        assert victim is not None
        gave_way.append(where[victim])
        cap.discard(victim)
        cap.add(next(ends), **member)
        if where[victim] == "c":
            back = cap.place(**c)
            assert back.victim is not None
            cap.discard(back.victim)
            end = next(ends)
            cap.add(end, **c)
            where[end] = "c"
    assert gave_way == ["d", "e", "d", "c", "e", "c"]


def _without(cap: OpenChannels[int], source: str) -> OpenChannels[int]:
    """The same channels, in the same order, but `source`'s own strangers' channels."""
    shadow: OpenChannels[int] = OpenChannels(cap.limit)
    for end, held in sorted(cap._held.items(), key=lambda item: item[1].seq):
        if not (held.stranger and held.source == source and not held.behind):
            authorities = frozenset() if held.stranger else held.authorities
            where = Opener(
                stranger=held.stranger,
                source=held.source,
                network=held.network,
                authorities=authorities,
                behind=held.behind,
            )
            shadow.add(end, **where)
    return shadow


def test_a_member_behind_b_gets_the_victim_as_if_b_s_own_were_not_held() -> None:
    """73u cap4 1 (random sans-IO tables: strangers of four networks of three hosts, own and
    behind a node, members of a0 behind a node): where b's own source, none of its parties in
    it, is the one that would give way, the strangers' channel that gives way for a member
    behind b is the one that would give way for a member from elsewhere were b's own not held
    (a party behind a node first within its source: the same channel). Before: b's own
    counted for b's network, another network's source holding more gave way in the shadow,
    b's network's next in the cap."""
    rng = random.Random(734)
    checked = 0
    for _ in range(200):
        cap: OpenChannels[int] = OpenChannels(rng.randrange(4, 12))
        for end in itertools.count():
            if len(cap) >= cap.limit:
                break
            network, host = rng.randrange(4), rng.randrange(3)
            stranger = rng.random() < 0.8
            cap.add(
                end,
                stranger=stranger,
                source=f"n{network}h{host}",
                network=f"n{network}",
                authorities=frozenset() if stranger else A0,
                behind=not stranger or rng.random() < 0.2,
            )
        for source in sorted({held.source for held in cap._held.values()}):
            member = Opener(
                stranger=False, source=source, network=source[:2], authorities=A0, behind=True
            )
            top = cap._networks.most(None)
            chosen = cap._sources[top].most(None)
            shadow = _without(cap, source)
            if chosen != source or (top, source) in cap._behind or not shadow.strangers:
                continue  # b's own not the one that gives way: the ranking as for anyone
            assert cap.place(**member).victim == shadow._victim(False, "far", "far", False)
            checked += 1
    assert checked > 100  # (the walks reach the case)
