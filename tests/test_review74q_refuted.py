"""Review 74q: attacks on review 74m's changes to the node's cap on open channels (cap7 1: for a
member behind node b, an authority gives way only while over its share besides b's own; cap7 2:
`Ranked(..., firsts=True)`, each group's sources in a heap by their oldest, `oldest_but`) that
did not work (each passes on the code as it is; kept so a change that makes one work fails
here)."""

from __future__ import annotations

import collections
import itertools
import random

from tests.test_review74a_cap5 import walk
from troth.ranked import Ranked


def _scan_most(groups: dict[str, dict[int, None]], skip: str | None) -> str | None:
    """The key holding the most, `skip`'s group set aside, among equals the one whose oldest
    is the oldest: a full scan."""
    rest = [(-len(g), next(iter(g)), k) for k, g in groups.items() if k != skip]
    return min(rest)[2] if rest else None


def test_ranked_with_firsts_says_what_a_scan_says_under_churn_of_short_lived_keys() -> None:
    """Tried (74q cap8 1): `Ranked(firsts=True)` parting from a full scan, or its heaps growing,
    when a key's OLDEST leaves (its first changes: an entry left stale and mis-ordered?), a
    group is emptied and filled again (its old entry taken for the new one?), and keys are
    many and short-lived (each seen once: stale entries cleared only on the next push): 4,000
    random changes, half the keys new. After each, `most`, `most_but`, `most_as` and
    `oldest_but` say what a scan says for every key, and the heap of firsts holds at most twice
    the most keys held at once and 17 entries besides."""
    rng = random.Random(7474)
    order: dict[int, int] = {}
    ranked: Ranked[str, int] = Ranked(order.__getitem__, firsts=True)
    ends, fresh = itertools.count(1), itertools.count()
    peak = 0
    for _ in range(4000):
        keys = list(ranked.groups)
        if keys and rng.random() < 0.5:
            key = rng.choice(keys)
            group = list(ranked.groups[key])
            ranked.remove(key, group[0] if rng.random() < 0.6 else rng.choice(group))
        else:
            new = not keys or rng.random() < 0.5
            key = f"k{next(fresh)}" if new else rng.choice(keys)
            end = next(ends)
            order[end] = end
            ranked.add(key, end)
        groups = ranked.groups
        peak = max(peak, len(groups))
        for skip in [*groups, "none"]:
            firsts = [next(iter(g)) for k, g in groups.items() if k != skip]
            assert ranked.oldest_but(skip) == min(firsts, default=None)
            assert ranked.most_but(skip) == _scan_most(groups, skip)
        if groups:
            assert ranked.most(None) == _scan_most(groups, None)
            key = rng.choice(list(groups))
            size = rng.randrange(len(groups[key]) + 1)
            oldest = next(iter(groups[key]))
            scanned = {k: dict(g) for k, g in groups.items()}
            scanned[key] = dict.fromkeys(range(oldest, oldest + size))
            if not size:
                del scanned[key]
            assert ranked.most_as(key, size, oldest) == _scan_most(scanned, None)
        assert len(ranked._firsts or ()) <= 2 * peak + 17


def test_a_flood_of_short_lived_sources_in_one_network_leaves_the_heap_of_firsts_bounded() -> None:
    """Tried (74q cap8 1): the heap of firsts growing without bound under a stranger flood from
    65,536 /64s of one /48 cycling (each source short-lived, its stale entry cleared only on a
    later push) at a full table (3,072 strangers' places): 100,000 closes of the oldest and
    opens of the next /64. The heap holds at most twice the sources held and 17 besides, the
    oldest besides any source is right, and once the flood ends (a few sources left) the next
    push filters it to what is held."""
    order: dict[int, int] = {}
    ranked: Ranked[str, int] = Ranked(order.__getitem__, firsts=True)
    held: collections.deque[tuple[str, int]] = collections.deque()
    largest = 0
    for end in range(3072 + 100_000):
        order[end] = end
        source = f"2001:db8:0:{end % 65_536:x}::/64"
        ranked.add(source, end)
        held.append((source, end))
        if len(held) > 3072:
            ranked.remove(*held.popleft())
        largest = max(largest, len(ranked._firsts or ()))
    assert largest <= 2 * 3073 + 17  # (3,073 held as each new one comes in)
    first_source, first = held[0]
    assert ranked.oldest_but(first_source) == held[1][1]
    assert ranked.oldest_but("elsewhere") == first
    while len(held) > 3:
        ranked.remove(*held.popleft())
    end = 3072 + 100_000
    order[end] = end
    ranked.add("late", end)
    assert len(ranked._firsts or ()) <= 2 * len(ranked) + 17


def test_wider_walks_find_no_state_where_the_cap_parts_from_the_reference() -> None:
    """Tried (74q cap8 2 and 3): `place`, `admits` and the reference model (cap7 1's rule:
    over its share besides b's own for a member behind b) parting on walks wider than review
    74a's (caps up to 24, up to 8 sources in up to 4 networks, up to 4 authorities trusted,
    half of them members only, so the members' phase, b's own in two authorities and the new
    refusal are met: a run of 3,875 such walks met b's member refused where b's own alone
    held an authority over 446 times in 17,749 members'-phase probes, b's own in two
    authorities 3,868). Each walk checks every newcomer in every state."""
    rng = random.Random(7417)
    for _ in range(24):
        limit, networks = rng.randint(8, 24), rng.randint(1, 4)
        sources, trusted = rng.randint(2, 8), rng.randint(1, 4)
        steps_rng = random.Random(rng.randrange(2**32))
        members_only = steps_rng.random() < 0.5
        classes = (1, 2, 3, 4, 6, 7, 7, 3) if members_only else (0, 0, 0, 1, 2, 3, 4, 5, 6, 7)
        steps = [
            (steps_rng.randrange(10), steps_rng.choice(classes), steps_rng.randrange(8), b)
            for b in (steps_rng.random() < 0.4 for _ in range(steps_rng.randrange(20, 60)))
        ]
        walk(limit, networks, sources, trusted, steps)
