"""Review 74h: attacks on the node's cap on open channels (`troth.node.channel_cap`) with a node's
own set aside in the members' phase (cap6 1) that did not work (each passes on the code as it
is; kept so a change that makes one work fails here)."""

from __future__ import annotations

import itertools

from tests.support.cap_reference import Held
from tests.test_review74a_cap5 import _opener
from tests.test_review74h_cap6 import A0, A1, _behind_b, _members
from troth.node.channel_cap import OpenChannels
from troth.node.shares import LOCAL


def test_b_s_members_flooding_take_their_authority_s_share_and_no_more() -> None:
    """Tried: b's members, free for b to mint, churning a1's other hosts round after round now
    that b's own are set aside. Cap 12, one authority trusted (shares of 4): a1 holds b's own
    six (the oldest) and host c's five, a0 one. Members of a0 behind b, one after another:
    the first takes one of c's places, a1 then at its share besides b's own, and each next is
    refused (review 74m, cap7 1: c lost three, every place a0's share left, where were b's
    own not held it loses one); b's own all stay, and c keeps four."""
    cap, held = _members(12, 1, [(A1, "b")] * 6 + [(A1, "c")] * 5 + [(A0, "d")])
    ends = itertools.count(len(held))
    member = _opener(_behind_b(A0))
    taken = []
    for _ in range(10):
        place = cap.place(**member)
        assert place.admitted == cap.admits(**member)
        if not place.admitted:
            continue
        assert place.victim is not None
        taken.append(cap._held[place.victim].source)
        cap.discard(place.victim)
        cap.add(next(ends), **member)
    assert taken == ["c"]
    assert sum(h.source == "b" and not h.behind for h in cap._held.values()) == 6


def test_a_stranger_or_a_member_at_its_share_behind_b_is_still_refused() -> None:
    """Tried: cap6 1's set-aside letting a stranger behind b, or a member of an authority at
    its share, take a member's place in the members' phase: refused, at message 3 as at take-in
    (a stranger is promised no place there; the share is the newcomer's bound, 54r)."""
    cap, _ = _members(6, 1, [(A0, "d"), (A0, "e")] + [(A1, "b")] * 2 + [(A1, "c")] * 2)
    for newcomer in (Held(-1, True, "b", "nb", frozenset(), True), _behind_b(A0)):
        assert not cap.admits(**_opener(newcomer))
        assert not cap.place(**_opener(newcomer)).admitted


def test_b_s_own_in_every_authority_tied_cost_a_walk_past_them_in_each() -> None:
    """Tried (cost, cap6 1's worst case): a full table (4,096; two authorities trusted, shares
    of 1,024) of members: b's 256 own (the per-source limit) the oldest, each of both a1 and
    a2, then 1,100 hosts of one channel of each authority, alternately, local callers the
    rest: a1 and a2 over their share besides b's own (review 74m, cap7 1), tied. A member of
    a3 behind b, 300 times: a1's first host gives way (its oldest besides b's own the older),
    never b's own, found without a scan of the table (74h: a walk past b's own in each tied
    authority; 74m, cap7 2: a heap of each authority's sources by their oldest); the rankings
    hold as many heap entries after as before."""
    cap: OpenChannels[int] = OpenChannels(4096, lambda: 2)
    ends = itertools.count()
    for _ in range(256):
        cap.add(next(ends), stranger=False, source="b", network="nb", authorities=A1 | {b"a2"})
    for host in range(1100):
        for authority in (A1, frozenset({b"a2"})):
            cap.add(
                next(ends), stranger=False, source=f"h{host}", network="n", authorities=authority
            )
    while len(cap) < cap.limit:
        cap.add(next(ends), stranger=False, source="l", network="l", authorities=frozenset({LOCAL}))

    def entries() -> int:
        return cap._members.entries() + sum(r.entries() for r in cap._member_sources.values())

    before = entries()
    member = _opener(_behind_b(frozenset({b"a3"})))
    for _ in range(300):
        assert cap.place(**member).victim == 256
    assert entries() == before
