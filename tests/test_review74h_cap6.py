"""Review 74h, cap6: the node's cap on open channels (`troth.node.channel_cap`) in its members'
phase (no stranger's channel held), for a member behind node b (each test failed on 708f959f).

Cap6 1 (low: members behind a node locked out by the node's own; review 74a's open question,
the lead's decision). At the cap held by members alone, a member of an authority within its
share takes the place of a channel of the authority over its share; a member behind b was
refused wherever b's own would give way (review 73k, kept 2: never b's own for b's parties),
so while b's own were the top source of the authority over its share, every member behind b,
its authority within its share, was locked out, however many channels that authority held
besides them. Now the rule of the strangers' phase (reviews 73r, 73u, 74a): for a member
behind b, b's own are set aside in the members' ranking too, the authorities over their share
ranked by what they hold besides them, b's source by b's parties: the next source of that
authority gives way, or the next authority over its share; never a member's channel of b's
own for b's party; refused when no authority over its share holds any besides b's own.
"""

from __future__ import annotations

import itertools

import pytest

from tests.support.cap_reference import Held, reference_place
from tests.test_review74a_cap5 import _opener
from troth.node.channel_cap import OpenChannels
from troth.node.shares import LOCAL

A0, A1, A2 = frozenset({b"a0"}), frozenset({b"a1"}), frozenset({b"a2"})


def _members(
    limit: int, trusted: int, layout: list[tuple[frozenset[bytes], str]], party: bool = False
) -> tuple[OpenChannels[int], list[Held]]:
    """A cap of `limit` held by members alone, `layout` (authorities, source) oldest first,
    then (`party`) a member of a1 behind b."""
    cap: OpenChannels[int] = OpenChannels(limit, lambda: trusted)
    held = [
        Held(end, False, source, f"n{source}", authorities, False)
        for end, (authorities, source) in zip(itertools.count(), layout, strict=False)
    ]
    if party:
        held.append(Held(len(held), False, "b", "nb", A1, True))
    for each in held:
        cap.add(each.end, **_opener(each))
    assert len(cap) == limit
    return cap, held


def _behind_b(authorities: frozenset[bytes]) -> Held:
    return Held(-1, False, "b", "nb", authorities, True)


def test_the_over_share_authority_s_next_source_gives_way_for_b_s_member() -> None:
    """Cap6 1: cap 8, one authority trusted (shares of 2): a0 holds one (host d), a1 seven:
    b's own three the oldest, host e's one, host c's two, one of b's parties the newest. A
    member of a0 behind b: a1 holds four besides b's own, b's source one of them (its party),
    c two: c's oldest gives way, at message 3 as at take-in, as the reference says (before:
    b's party, b's source the top of a1 with b's own counted, as 74a cap5 1 in the strangers'
    phase; with none of b's parties held, refused: 73o refuted 2). b's own all stay; one from
    elsewhere still gets b's party (54r, 73k kept 1)."""
    layout = [(A0, "d")] + [(A1, "b")] * 3 + [(A1, "e")] + [(A1, "c")] * 2
    cap, held = _members(8, 1, layout, party=True)
    member = _behind_b(A0)
    assert reference_place(held, member, 8, 1) == (True, 5)
    assert cap.admits(**_opener(member))
    assert (cap.place(**_opener(member)).victim, cap._held[5].source) == (5, "c")
    elsewhere = Held(-1, False, "f", "nf", A0, False)
    assert cap.place(**_opener(elsewhere)).victim == 7


@pytest.mark.parametrize("c_holds", [0, 1])
def test_the_authority_holding_the_most_besides_b_s_own_gives_way(c_holds: int) -> None:
    """Cap6 1: cap 12, two authorities trusted (shares of 3): a1 holds b's own four (the
    oldest) and `c_holds` of host c's, a0 host e's four, local callers the rest but one of
    a2's. A member of a2 behind b: a0, holding four besides b's own to a1's one or none, gives
    way, e's oldest (the next authority over its share), never b's own, as the reference says
    (before: refused, a1 holding the most with b's own)."""
    layout = [(A1, "b")] * 4 + [(A0, "e")] * 4 + [(A1, "c")] * c_holds
    layout += [(frozenset({LOCAL}), "local")] * (11 - len(layout)) + [(A2, "f")]
    cap, held = _members(12, 2, layout)
    member = _behind_b(A2)
    assert reference_place(held, member, 12, 2) == (True, 4)
    assert cap.admits(**_opener(member))
    assert cap.place(**_opener(member)).victim == 4
