"""Review 73o, cap2: review 73k's rules for the parties behind a node at the node's cap on open
channels (`troth.node.channel_cap`), attacked (each test failed on the code before its fix).

Cap2 1 (low: a member behind a node evicting another host's member while strangers hold
places). At the cap with strangers' channels held, a newcomer takes a stranger's place: the
members' ranking by authority share (review 54r) is for a cap held by members alone. Review
73k's kept 2 left a member behind node b, the strangers' source holding the most b's own with
none of b's parties in it, to fall through to the members' ranking: it took the place of a
member of the authority over its share, another host's channel (before 73k: b's own stranger
channel gave way; b's parties only, never anyone else, may lose by the rule that protects b).
Now, with strangers' channels held, a party behind a node that finds none of them to give way
is refused, at message 3 (`admits`) as at take-in (`place`), as a stranger behind b is.
"""

from __future__ import annotations

from troth.node.channel_cap import OpenChannels, Opener


def test_a_member_behind_a_node_takes_no_members_place_while_strangers_hold_places() -> None:
    """Cap2 1: cap 8 (two authorities trusted: shares of 2); b, a stranger host, holds three
    channels of its own (the strangers' only source); host c's members of a1 hold four (over
    its share), host d's member of a0 one. A member of a0 behind b opens one: refused (before:
    admitted, c's oldest channel, a member's, gave way while b's strangers' stayed)."""
    cap: OpenChannels[int] = OpenChannels(8, lambda: 2)
    a0, a1 = frozenset({b"a0"}), frozenset({b"a1"})
    for end in range(3):
        cap.add(end, stranger=True, source="b", network="nb")
    for end in range(3, 7):
        cap.add(end, stranger=False, source="c", network="nc", authorities=a1)
    cap.add(7, stranger=False, source="d", network="nd", authorities=a0)
    newcomer = Opener(stranger=False, source="b", network="nb", authorities=a0, behind=True)
    place = cap.place(**newcomer)
    assert (place.admitted, place.victim) == (False, None)
    assert not cap.admits(**newcomer)
    own = Opener(stranger=False, source="b", network="nb", authorities=a0, behind=False)
    assert cap.place(**own).victim == 0  # b's own member: b's oldest stranger channel goes
