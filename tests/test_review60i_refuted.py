"""Review 60i: attacks on review 60f's listener changes that did NOT work (each test fails if
the defence it exercises breaks). Sans-IO: the open-channel cap's rankings
(`troth.node.channel_cap`) against a brute-force reading of its rule, the transport's
remembered refusals (`troth.transport.eviction.Refusals`) with stand-in connections, the
handshake budgets' quarter-forget (`troth.node.opening_rates`), the rate-limited log's level
check (`troth.transport.ratelog`)."""

from __future__ import annotations

import collections
import logging
import random

from troth.node.channel_cap import OpenChannels

AUTHORITIES = [bytes([n]) * 32 for n in range(4)]


def _most_then_oldest(groups: dict[object, list[int]], mine: object | None) -> object:
    """The docs' rule: the key holding the most (`mine` when among them), else, of those, the
    one whose oldest is the oldest."""
    top = max(len(seqs) for seqs in groups.values())
    if mine is not None and len(groups.get(mine, ())) == top:
        return mine
    return min((min(seqs), key) for key, seqs in groups.items() if len(seqs) == top)[1]


def _expected_stranger_victim(
    channels: OpenChannels[int], source: str | None, network: str | None
) -> int:
    held = {end: h for end, h in channels._held.items() if h.stranger}
    networks: dict[object, list[int]] = collections.defaultdict(list)
    for h in held.values():
        networks[h.network].append(h.seq)
    chosen = _most_then_oldest(networks, network)
    sources: dict[object, list[int]] = collections.defaultdict(list)
    for h in held.values():
        if h.network == chosen:
            sources[h.source].append(h.seq)
    picked = _most_then_oldest(sources, source)
    return min(
        (h.seq, end) for end, h in held.items() if h.network == chosen and h.source == picked
    )[1]


def _heap_entries(channels: OpenChannels[int]) -> int:
    rankings = [channels._networks, channels._members]
    rankings += [*channels._sources.values(), *channels._member_sources.values()]
    return sum(len(heap) for ranked in rankings for heap in ranked._heaps.values())


def _expected_member_victim(channels: OpenChannels[int]) -> int | None:
    share = channels._shares.share(channels.limit)
    held = {end: h for end, h in channels._held.items() if h.gives_way}
    counts = collections.Counter(a for h in held.values() for a in h.authorities)
    over = [a for a in counts if channels._shares.held(a) > share]
    if not over:
        return None
    most = max(channels._shares.held(a) for a in over)
    authority = min(
        (min(h.seq for h in held.values() if a in h.authorities), a)
        for a in over
        if channels._shares.held(a) == most
    )[1]
    sources: dict[object, list[int]] = collections.defaultdict(list)
    for h in held.values():
        if authority in h.authorities:
            sources[h.source].append(h.seq)
    picked = _most_then_oldest(sources, None)
    return min(
        (h.seq, end) for end, h in held.items() if authority in h.authorities and h.source == picked
    )[1]


def _churn(strangers: float) -> tuple[collections.Counter[str], int]:
    """3,000 channels opened (a share `strangers` of them strangers') and closed at random
    under a cap of 40, each victim checked against the docs' rule: the victims by kind, the
    most entries the rankings' heaps held."""
    rng = random.Random(60)
    channels: OpenChannels[int] = OpenChannels(40, trusted=lambda: 4)
    seen: collections.Counter[str] = collections.Counter()
    most_entries = 0
    for end in range(3000):
        if channels._held and rng.random() < 0.4:
            channels.discard(rng.choice(list(channels._held)))
            continue
        stranger = rng.random() < strangers
        network = f"n{rng.randrange(6)}"
        source = f"{network}.s{rng.randrange(3)}"
        authorities = frozenset(rng.choices(AUTHORITIES, (8, 4, 1, 1), k=rng.choice((1, 1, 2))))
        counted = frozenset() if stranger else authorities
        full = not channels._room(stranger)
        if full and channels.strangers:
            mine = (source, network) if stranger else (None, None)
            expected, kind = _expected_stranger_victim(channels, *mine), "stranger"
        elif full and not stranger and channels._shares.room(counted, channels.limit):
            expected, kind = _expected_member_victim(channels), "member"
        else:
            expected, kind = None, "none"
        place = channels.place(
            stranger=stranger, source=source, network=network, authorities=counted
        )
        assert place.victim == expected
        seen[kind if expected is not None else "none"] += 1
        if not place.admitted:
            seen["refused"] += 1
            continue
        if place.victim is not None:
            channels.discard(place.victim)
        channels.add(end, stranger=stranger, source=source, network=network, authorities=counted)
        most_entries = max(most_entries, _heap_entries(channels))
    return seen, most_entries


def test_the_rankings_pick_the_documented_stranger_victim_under_churn() -> None:
    """Strangers from 6 networks of 3 sources each, and members of one or two of 4
    authorities, open and close 3,000 channels at random (a cap of 40; victims closed as the
    manager does). Each victim is the one the docs' rule names (the network holding the most
    stranger channels, the source of it holding the most, its oldest; the newcomer's own when
    among the most), and the rankings' heaps hold a bounded number of entries (stale ones
    filtered), not one per churned channel."""
    seen, most_entries = _churn(0.6)
    assert seen["stranger"] > 300
    assert most_entries <= 200


def test_the_rankings_pick_the_documented_member_victim_under_churn() -> None:
    """Members only (of one authority or two, mostly of two of the four), some refused at their
    share: each victim is the oldest channel of the source holding the most of the authority
    holding the most over its share (among equals, whose oldest is the oldest)."""
    seen, most_entries = _churn(0.0)
    assert seen["member"] > 50
    assert seen["refused"] > 0
    assert most_entries <= 200
