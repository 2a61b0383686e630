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
from typing import Any

import pytest

from tests.support.load import attacker_addresses
from tests.test_review60f_listener import _close, _hold
from tests.test_review60i_listener import _Lines
from tests.test_transport_tcp import Server, run, until
from troth.node.channel_cap import OpenChannels
from troth.node.opening_rates import _Budgets
from troth.transport import TcpSettings
from troth.transport.ratelog import RateLimitedLog

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
    rankings: list[Any] = [channels._networks, channels._members]
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
        expected: int | None
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


@pytest.mark.usefixtures("loopback_sources")  # its clients stand for remote hosts
def test_a_remembered_refusal_ends_when_a_frameless_connection_takes_a_freed_place() -> None:
    """At a cap of 8 held by active connections of one /24, a newcomer of it is refused and
    the refusal remembered; one of them closes and a connection of the /24 that sends nothing
    takes its place: the next newcomer of the /24 has that frameless one give way (the table's
    changes, the close and the admission, each forgot the refusal), and once all are closed no
    frameless connection is left kept (`_unproven`: none of the closed ones held)."""

    async def test(server: Server) -> None:
        transport, counters = server.transport, server.transport.counters
        holders = await _hold(server, attacker_addresses(8, subnet=70))
        refused = await server.client("127.0.70.200")
        await until(lambda: counters.refused_over_limit == 1)
        _close(holders[:1])
        await until(lambda: len(transport._accepted) == 7)
        frameless = await server.client("127.0.70.201")
        await until(lambda: len(transport._accepted) == 8)
        newcomer = await server.client("127.0.70.202")
        await until(lambda: counters.evicted == 1)
        assert counters.refused_over_limit == 1
        assert [c.host for c in transport._unproven] == ["127.0.70.202"]
        _close([*holders[1:], refused, frameless, newcomer])
        await until(lambda: not transport._accepted)
        assert not transport._unproven

    run(test, TcpSettings(max_connections=8))


def _quiet_logger(level: int, *handlers: logging.Handler) -> logging.Logger:
    """A logger at `level` with `handlers`, outside the logging tree (where pytest adds its
    capturing handlers to the root logger and to each logger that does not propagate)."""
    logger = logging.Logger("review60i", level)
    for handler in handlers:
        logger.addHandler(handler)
    return logger


def test_a_logger_at_notset_writes_and_counts_what_its_parent_lets_through() -> None:
    """Review 60f's level check (and 60i's handler check) do not hide lines a handler writes: a
    logger at NOTSET under a parent at DEBUG whose handler is at NOTSET writes an INFO line
    (its level inherited), counted; a child that does not propagate, with a handler of its own
    at DEBUG, under a parent that would not write it, writes it too."""
    lines = _Lines(logging.NOTSET)
    child = logging.Logger("review60i.transport")
    child.parent = _quiet_logger(logging.DEBUG, lines)
    log = RateLimitedLog(child, 2, clock=lambda: 0.0)
    assert log.log(logging.INFO, "junk %d", 1)
    assert lines.lines == ["junk 1"]
    own = _Lines(logging.DEBUG)
    alone = logging.Logger("review60i.alone", logging.DEBUG)
    alone.addHandler(own)
    alone.propagate = False
    alone.parent = _quiet_logger(logging.ERROR, _Lines(logging.ERROR))
    assert RateLimitedLog(alone, 2, clock=lambda: 0.0).log(logging.DEBUG, "frame %d", 2)
    assert own.lines == ["frame 2"]


def test_a_full_table_of_handshake_budgets_gives_a_flooding_network_its_burst_no_sooner() -> None:
    """Review 60f's quarter-forget: a network that spent its whole burst, its budget the newest
    of a full table (16 kept; within one second, none refilled), gets a fresh burst only once
    at least three quarters of the table's worth of new networks came, as when the oldest was
    forgotten one at a time (each new network's own budget is its own burst, as before)."""
    budgets = _Budgets(rate=1, burst=4, max_sources=16, evict=True)
    for n in range(15):
        assert budgets.take(f"other {n}", 1, now=7)
    assert budgets.take("flood", 4, now=7)
    newcomers = 0
    while not budgets.take("flood", 1, now=7):
        assert budgets.take(f"new {newcomers}", 1, now=7)
        newcomers += 1
    assert newcomers >= 12
    assert len(budgets) <= 16
