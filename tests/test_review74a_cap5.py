"""Review 74a, cap5: the node's cap on open channels (`troth.node.channel_cap.OpenChannels`)
against one plain reference model of its rule (`tests/support/cap_reference.py`, a full scan
written from the docs), in every state of random walks, and the one place they disagreed.

Cap5 1 (low: a neighbour churned by a node's members, review 73u cap4 1 and 73x last 1 again,
through one party). For a member behind node b, b's own strangers' channels were set aside
(the ranking as for a member from elsewhere were they not held: docs/protocols.md) only while
none of b's parties was held in b's network: with one party of b held there, b's own counted
for b's network again, and a neighbour of b's network paid for b's members while another
network holding more without b's own stayed. The walk found it (the only disagreement, each
time: a member behind a node, one of its parties held); the attack fails on e79ab578.
"""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.cap_reference import Held, reference_place
from troth.node.channel_cap import OpenChannels, Opener
from troth.node.shares import LOCAL

_CLASSES: tuple[frozenset[bytes] | None, ...] = (
    None,  # a stranger
    frozenset({b"a0"}),
    frozenset({b"a1"}),
    frozenset({b"a0", b"a1"}),
    frozenset({LOCAL}),
    frozenset(),  # counting against no authority
    frozenset({b"a2"}),  # (review 74h: a third authority, one in two with a1)
    frozenset({b"a1", b"a2"}),
)


def _newcomer(end: int, who: int, source: int, networks: int, behind: bool) -> Held:
    authorities = _CLASSES[who]
    return Held(
        end,
        authorities is None,
        f"n{source % networks}s{source}",
        f"n{source % networks}",
        frozenset() if authorities is None else authorities,
        behind,
    )


def _opener(held: Held) -> Opener:
    return Opener(
        stranger=held.stranger,
        source=held.source,
        network=held.network,
        authorities=held.authorities,
        behind=held.behind,
    )


def _steps(seed: int) -> list[tuple[int, int, int, bool]]:
    """A walk's steps: 0-1 one closed, else one opened (strangers the most), of a class, from
    a source, behind a node or not."""
    rng = random.Random(seed)
    classes = (0, 0, 0, 1, 2, 3, 4, 5, 6, 7)
    return [
        (rng.randrange(10), rng.choice(classes), rng.randrange(6), rng.random() < 0.4)
        for _ in range(rng.randrange(10, 80))
    ]


def walk(
    limit: int, networks: int, sources: int, trusted: int, steps: list[tuple[int, int, int, bool]]
) -> None:
    """`steps` on a cap and on the reference: in every state, for every newcomer (each class,
    source, behind a node or not), `place` and `admits` say what the reference says."""
    cap: OpenChannels[int] = OpenChannels(limit, lambda: trusted)
    held: list[Held] = []
    for end, (roll, who, source, behind) in enumerate(steps):
        if roll < 2:
            if held:
                gone = held.pop(source * 7 % len(held))
                cap.discard(gone.end)
            continue
        for each in range(len(_CLASSES)):
            for other in range(sources):
                for back in (False, True):
                    probe = _newcomer(end, each, other, networks, back)
                    expected = reference_place(held, probe, limit, trusted)
                    place = cap.place(**_opener(probe))
                    assert (place.admitted, place.victim) == expected, (held, probe)
                    assert cap.admits(**_opener(probe)) == expected[0], (held, probe)
        newcomer = _newcomer(end, who, source % sources, networks, behind)
        admitted, victim = reference_place(held, newcomer, limit, trusted)
        if admitted:
            if victim is not None:
                cap.discard(victim)
                held = [h for h in held if h.end != victim]
            cap.add(end, **_opener(newcomer))
            held.append(newcomer)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    limit=st.integers(1, 14),
    networks=st.integers(1, 3),
    sources=st.integers(1, 6),
    trusted=st.integers(1, 3),
    seed=st.integers(0, 2**32),
)
def test_the_cap_says_what_the_reference_says_in_every_state(
    limit: int, networks: int, sources: int, trusted: int, seed: int
) -> None:
    """74a cap5 (hypothesis walks: caps of 1-14, 1-3 networks, 1-6 sources, 1-3 authorities
    trusted, strangers, members of one or two of three authorities, local callers, channels of
    none, own and behind a node, opened and closed; review 74h widened them from caps of 4-12,
    2-3 networks, 2-4 sources, two authorities): `place` and `admits` agree with the reference
    model of the rule."""
    walk(limit, networks, sources, trusted, _steps(seed))


def test_one_party_of_b_held_makes_b_s_own_count_again_for_b_s_members() -> None:
    """74a cap5 1: cap 16 (strangers' part 12): nb holds c's three (the oldest), b's own two
    and one party behind b; nd five sources of one; members of a0 the rest. For a member
    behind b, nb holds four without b's own, nd five: nd's oldest source gives way, as for a
    member from elsewhere were b's own not held. Before, b's party made b's own count: nb held
    six, c and b three each, c the older: c gave way."""
    cap: OpenChannels[int] = OpenChannels(16)
    held: list[Held] = []
    ends = itertools.count()
    layout = [("c", "nb", False)] * 3 + [("b", "nb", False)] * 2 + [("b", "nb", True)]
    for source, network, behind in layout + [(s, "nd", False) for s in "defgh"]:
        held.append(Held(next(ends), True, source, network, frozenset(), behind))
    while len(held) < cap.limit:
        held.append(Held(next(ends), False, "m", "nm", frozenset({b"a0"}), False))
    for each in held:
        cap.add(each.end, **_opener(each))
    member = Held(next(ends), False, "b", "nb", frozenset({b"a1"}), True)
    admitted, expected = reference_place(held, member, cap.limit, 1)
    assert admitted
    assert expected is not None
    assert held[expected].source == "d"
    assert cap.place(**_opener(member)).victim == expected
