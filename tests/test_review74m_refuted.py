"""Review 74m: attacks on the node's cap on open channels (`troth.node.channel_cap`) in its
members' phase after review 74h (cap6 1) that did not work (each passes on the code as it is;
kept so a change that makes one work fails here)."""

from __future__ import annotations

import itertools
import random

import pytest

from tests.support.cap_reference import Held, reference_place
from tests.test_review74a_cap5 import _opener
from tests.test_review74h_cap6 import A0, A1, A2, _behind_b, _members
from troth.node.shares import LOCAL
from troth.ranked import Ranked

A12 = A1 | A2
_LOCAL = frozenset({LOCAL})


@pytest.mark.parametrize(
    "layout",
    [
        # b's own in a1 and a2, tied besides them, c's one in both their oldest besides them
        [(A12, "b")] * 2 + [(A12, "c")] + [(A1, "d")] * 2 + [(A2, "e")] * 2 + [(_LOCAL, "l")],
        # b's own in both, a1 more besides them; one of b's parties in a2
        [(A12, "b")] * 3 + [(A1, "c")] * 3 + [(A2, "e")] + [(A12, "c")],
        # b's own in both, the rest in both: one channel gives way from either
        [(A12, "b")] * 3 + [(A12, "c")] * 3 + [(A12, "d")] * 2,
        # b's own alone put both over their share
        [(A12, "b")] * 5 + [(A1, "c")] * 2 + [(A2, "e")],
    ],
)
def test_admits_agrees_with_place_and_the_reference_with_b_s_own_in_two_authorities(
    layout: list[tuple[frozenset[bytes], str]],
) -> None:
    """Tried (74m, area 3): `admits` and `place` parting in the members' phase with b's own
    members of two authorities over their share, tied or not, a channel in both of them, so
    that the authority `admits` judges differs from the one `place` picks: cap 9, two
    authorities trusted (shares of 2), a member of a0 behind b. They agree with each other
    and with the reference model, and b's own never give way."""
    cap, held = _members(9, 2, [(A0, "f"), *layout])
    for member in (_behind_b(A0), Held(-1, False, "g", "ng", A0, False)):
        expected = reference_place(held, member, 9, 2)
        place = cap.place(**_opener(member))
        assert (place.admitted, place.victim) == expected
        assert cap.admits(**_opener(member)) == expected[0]
        if member.behind and place.victim is not None:
            assert cap._held[place.victim].source != "b"


def test_oldest_but_says_what_a_scan_says_and_its_heap_stays_bounded() -> None:
    """Tried (74m, cap7 2's fix): `Ranked.oldest_but` (the heap of keys by their oldest)
    parting from a scan of the groups, or its heap growing, under 3,000 random adds and
    removes (the oldest, the newest, one in the middle) over 12 keys: after each, for every
    key, the oldest's order with that key's group set aside is a scan's, and the heap holds at
    most twice the keys and 17 stale entries besides."""
    rng = random.Random(74)
    order: dict[int, int] = {}
    ranked: Ranked[str, int] = Ranked(order.__getitem__, firsts=True)
    ends = itertools.count(1)
    for _ in range(3000):
        key = f"k{rng.randrange(12)}"
        group = ranked.groups.get(key)
        if group and rng.random() < 0.45:
            ranked.remove(key, rng.choice([next(iter(group)), list(group)[-1], *group]))
        else:
            end = next(ends)
            order[end] = end
            ranked.add(key, end)
        for skip in [*ranked.groups, "none"]:
            firsts = [next(iter(g)) for k, g in ranked.groups.items() if k != skip]
            assert ranked.oldest_but(skip) == min(firsts, default=None)
        assert len(ranked._firsts or ()) <= 2 * 12 + 17


def test_a_ranked_without_firsts_refuses_oldest_but() -> None:
    """Tried: `oldest_but` on a ranking kept without its heap of firsts (the transport's, the
    cap's networks and authorities) answering from nothing: TypeError, a caller's bug."""
    ranked: Ranked[bytes, int] = Ranked(int)
    ranked.add(LOCAL, 1)
    with pytest.raises(TypeError):
        ranked.oldest_but(LOCAL)
