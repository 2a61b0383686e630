"""Review 73r: attacks on the node's cap on open channels for the parties behind a node
(`troth.node.channel_cap`, reviews 73k/73o) that did not work, kept as passing tests."""

from __future__ import annotations

from troth.node.channel_cap import OpenChannels, Opener, Place

A0 = frozenset({b"a0"})


def _strangers(cap: OpenChannels[int], own: int, spread: int) -> None:
    """b (network "nb") holds `own` channels of its own, a stranger `spread`, one a network."""
    for end in range(own):
        cap.add(end, stranger=True, source="b", network="nb")
    for end in range(own, own + spread):
        cap.add(end, stranger=True, source=f"s{end}", network=f"n{end}")


def test_the_kept_quarter_admits_a_member_behind_a_node() -> None:
    """Tried: strangers at their part (6 of 8), b's own the top source, a member of a0 behind
    b: admitted at once, nothing giving way (54k's kept quarter holds for it), at message 3
    and at take-in."""
    cap: OpenChannels[int] = OpenChannels(8)
    _strangers(cap, own=3, spread=3)
    member = Opener(stranger=False, source="b", network="nb", authorities=A0, behind=True)
    assert cap.admits(**member)
    assert cap.place(**member) == Place(True)


def test_a_stranger_behind_a_node_holding_the_most_is_still_refused() -> None:
    """Tried: cap3 1's fix letting a stranger behind b take another host's place, b holding
    the most: still refused (73k kept 2; a stranger is promised no place, and b's parties
    taking others' places as b holds the most would grow b's share); b's own stays."""
    cap: OpenChannels[int] = OpenChannels(8)
    _strangers(cap, own=2, spread=4)
    cap.add(6, stranger=False, source="m", network="nm", authorities=A0)
    cap.add(7, stranger=False, source="m", network="nm", authorities=A0)
    stranger = Opener(stranger=True, source="b", network="nb", authorities=frozenset(), behind=True)
    assert not cap.admits(**stranger)
    assert cap.place(**stranger).admitted is False


def test_a_member_behind_a_node_takes_no_members_place_while_only_b_s_own_are_held() -> None:
    """Tried: after cap3 1's fallback, strangers' channels only b's own, a member behind b,
    an authority over its share (a1, host c): refused, no member's place taken (73o cap2 1
    holds), b's own kept."""
    cap: OpenChannels[int] = OpenChannels(8, lambda: 2)
    _strangers(cap, own=3, spread=0)
    for end in range(3, 8):
        cap.add(end, stranger=False, source="c", network="nc", authorities=frozenset({b"a1"}))
    member = Opener(stranger=False, source="b", network="nb", authorities=A0, behind=True)
    assert not cap.admits(**member)
    assert cap.place(**member).admitted is False
