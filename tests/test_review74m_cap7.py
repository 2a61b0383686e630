"""Review 74m, cap7: the node's cap on open channels (`troth.node.channel_cap`) in its members'
phase (no stranger's channel held), for a member behind node b, after review 74h (cap6 1) set
b's own aside there (each test failed on b39093dd).

Cap7 1 (low: another host churned by a node's members through the node's own). An authority
over its share was judged on everything it holds, b's own included, while b's members took
the place of its other hosts' channels only: b's own alone could put an authority over its
share, and then b's members, their authority within its share, took every place of its other
hosts, which held no more than its share between them (a member from elsewhere took b's own
there, the source holding the most; were b's own not held, the authority was within its share
and none of its hosts gave way), round after round as each came back. Now, for a member behind
b, an authority gives way only while it holds more than its share besides b's own: its other
hosts lose what they would lose were b's own not held (docs/protocols.md, the rule of the
strangers' phase), and b's members are refused where only b's own hold the authority over.

Cap7 2 (low: cost per handshake). Among authorities over their share tied at the most besides
b's own, each was ranked by its oldest besides b's own, found by a walk past b's own (up to
the per-source limit, 256) in each: 20 authorities trusted, each over its share, b's 256 own
members of all of them, made each check of a member behind b (twice per handshake) walk 5,120
channels, ~660 us a handshake to ~19 us for a member from elsewhere. Now each authority's
sources are kept in a heap by their oldest (`Ranked.oldest_but`), the oldest besides b's own
found without a walk.
"""

from __future__ import annotations

import itertools
from typing import Any

from tests.support.cap_reference import Held, reference_place
from tests.test_review74a_cap5 import _opener
from tests.test_review74h_cap6 import A0, A1, _behind_b, _members
from troth.node.channel_cap import OpenChannels
from troth.node.shares import LOCAL

_LOCAL = frozenset({LOCAL})


def test_b_s_own_alone_putting_an_authority_over_its_share_do_not_let_b_s_members_churn_c() -> None:
    """Cap7 1: cap 12, one authority trusted (shares of 4): a1 holds b's own six (the oldest)
    and host c's three, within a1's share; a0 one (d), local callers two. Were b's own not held,
    a1 would be within its share: a member of a0 behind b is refused (at message 3 as at
    take-in, as the reference says), c keeps its three, b's own all stay. Before: each of b's
    members took one of c's, all three, and took it again each time c came back after one of
    b's members closed; a member from elsewhere takes b's own oldest."""
    layout = [(A1, "b")] * 6 + [(A1, "c")] * 3 + [(A0, "d")] + [(_LOCAL, "l")] * 2
    cap, held = _members(12, 1, layout)
    member = _behind_b(A0)
    ends = itertools.count(len(held))
    evicted = []
    for _ in range(6):  # rounds: b's member in, then out, and whoever gave way back
        assert cap.admits(**_opener(member)) == cap.place(**_opener(member)).admitted
        victim = cap.place(**_opener(member)).victim
        if victim is None:
            continue
        gone = cap._held[victim]
        evicted.append(gone.source)
        cap.discard(victim)
        end = next(ends)
        cap.add(end, **_opener(member))
        cap.discard(end)
        cap.add(
            next(ends),
            stranger=False,
            source=gone.source,
            network=gone.network,
            authorities=gone.authorities,
        )
    assert evicted == []
    assert reference_place(held, member, 12, 1) == (False, None)
    assert sum(h.source == "c" for h in cap._held.values()) == 3
    elsewhere = Held(-1, False, "f", "nf", A0, False)
    assert cap.place(**_opener(elsewhere)).victim == 0


class _Counting(dict[int, Any]):
    """The channels held, counting the look-ups of one (the cost of a check, not its time)."""

    looked = 0

    def __getitem__(self, key: int) -> Any:
        self.looked += 1
        return super().__getitem__(key)


def test_twenty_tied_authorities_over_their_share_cost_no_walk_past_b_s_own() -> None:
    """Cap7 2: a full table (4,096; 20 authorities trusted, shares of 186): b's 256 own (the
    per-source limit) the oldest, each a member of all 20, then 187 hosts of one channel in
    each authority (each over its share besides b's own, all tied), local callers the rest. A
    member behind b of an authority holding none: a1's first host gives way (a0's oldest
    besides b's own the oldest), never b's own, at message 3 as at take-in; each check looks
    up a few channels per authority, not a walk past b's own 256 in each (5,120 a check
    before)."""
    trusted = 20
    cap: OpenChannels[int] = OpenChannels(4096, lambda: trusted)
    ends = itertools.count()
    everyone = frozenset(f"a{i:02}".encode() for i in range(trusted))
    for _ in range(256):
        cap.add(next(ends), stranger=False, source="b", network="nb", authorities=everyone)
    for host in range(cap._shares.share(cap.limit) + 1):
        for authority in sorted(everyone):
            cap.add(
                next(ends),
                stranger=False,
                source=f"h{host}",
                network="n",
                authorities=frozenset({authority}),
            )
    while len(cap) < cap.limit:
        cap.add(next(ends), stranger=False, source="l", network="l", authorities=_LOCAL)
    counting = cap._held = _Counting(cap._held)
    member = _opener(_behind_b(frozenset({b"new"})))
    for _ in range(3):
        assert cap.admits(**member)
        assert cap.place(**member).victim == 256
    assert counting.looked <= 3 * 2 * 10 * trusted
