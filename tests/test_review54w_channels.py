"""Review 54w: the node-wide channel cap split per authority (review 54r) merged with the
kept indexes and `admits` (review 54o).

Channels 1: `OpenChannels.admits` (the handshake's check at message 3) said yes to a member of
an authority within its share when the cap was held by channels none of which gives way (local
callers, the nodes at the other end of this node's own connections, members within their
shares), and `place` then refused the channel it had let complete its handshake: each such
member's handshake was completed and refused, over and over (the two disagreed by design in
review 54o's equivalence test)."""

from __future__ import annotations

from troth.node.channel_cap import OpenChannels
from troth.node.shares import LOCAL

A, B, C = b"A" * 32, b"B" * 32, b"C" * 32


def held_by_local_callers() -> OpenChannels[str]:
    """A cap of 8 split between three authorities (shares of 8 // 5 = 1): A and B at their
    share, local callers holding the rest; nothing gives way for a member of C."""
    cap: OpenChannels[str] = OpenChannels(8, lambda: 3)
    cap.add("a", stranger=False, source="s1", network="n1", authorities=frozenset({A}))
    cap.add("b", stranger=False, source="s2", network="n2", authorities=frozenset({B}))
    for i in range(6):
        cap.add(
            f"l{i}", stranger=False, source="local", network="local", authorities=frozenset({LOCAL})
        )
    assert len(cap) == cap.limit
    return cap


def test_admits_refuses_at_message_3_the_member_place_would_refuse() -> None:
    cap = held_by_local_callers()
    place = cap.place(stranger=False, source="s3", network="n3", authorities=frozenset({C}))
    assert not place.admitted
    assert not cap.admits(stranger=False, authorities=frozenset({C}))


def test_admits_agrees_with_place_when_a_member_gives_way() -> None:
    cap = held_by_local_callers()
    cap.discard("l0")
    cap.add("a2", stranger=False, source="s1", network="n1", authorities=frozenset({A}))
    place = cap.place(stranger=False, source="s3", network="n3", authorities=frozenset({C}))
    assert place == type(place)(True, "a")  # A over its share gives way, its oldest
    assert cap.admits(stranger=False, authorities=frozenset({C}))
