"""Review 60i, channels 1: the node's cap on open channels (`troth.node.channel_cap`) keeps
the members' channels that may give way ranked by authority (`Ranked`, review 60f, listener
4), a channel of a member whose verified chains root in two trusted authorities under both.
Its close forgot the channel (`_held`) before taking it out of its authorities' groups: taking
it out of the first one pushed that group's new size into the ranking's heap, and when that
push filtered the heap of its stale entries (after some churn: another authority's member
opening and closing 18 channels), the second authority's entry, whose oldest channel was the
closing one, was looked up in `_held` and raised KeyError. The close failed half done (the
channel still filed under the second authority, its `_held` entry gone), and every later pick
of a member's channel to give way could fail on it. The channel is now taken out of its groups
before it is forgotten."""

from __future__ import annotations

from troth.node.channel_cap import OpenChannels

A, B, C = b"A" * 32, b"B" * 32, b"C" * 32
BOTH = frozenset({A, B})


def _two_authorities_member_closing_after_churn() -> OpenChannels[str]:
    """A member of A and B holds "x" (the oldest of each); another member of the authority
    `BOTH` names first holds "a1"; a member of C opens and closes channels until the heap of
    groups holding one channel is one push from being filtered."""
    first = next(iter(BOTH))  # the authority "x" is taken out of first, as `discard` does
    channels: OpenChannels[str] = OpenChannels(8, trusted=lambda: 3)
    channels.add("x", stranger=False, source="s1", network="n1", authorities=BOTH)
    channels.add("a1", stranger=False, source="s2", network="n2", authorities=frozenset({first}))
    for n in range(64):
        if len(channels._members._heaps[1]) >= 20:
            break
        channels.add(f"c{n}", stranger=False, source="s3", network="n3", authorities=frozenset({C}))
        channels.discard(f"c{n}")
    return channels


def test_a_member_of_two_authorities_closes_after_churn() -> None:
    channels = _two_authorities_member_closing_after_churn()
    channels.discard("x")
    assert "x" not in channels
    assert all("x" not in ends for ends in channels._members.groups.values())
    assert channels._members.groups == {next(iter(BOTH)): {"a1": None}}


def test_members_channels_still_give_way_after_that_close() -> None:
    """After that close, the first authority's members fill the cap (8, 3 trusted: a share of
    1 each): a member of C, within its share, takes the place of that authority's oldest."""
    channels = _two_authorities_member_closing_after_churn()
    channels.discard("x")
    first = next(iter(BOTH))
    for n in range(2, 9):
        channels.add(
            f"a{n}", stranger=False, source="s2", network="n2", authorities=frozenset({first})
        )
    place = channels.place(stranger=False, source="s9", network="n9", authorities=frozenset({C}))
    assert place.admitted
    assert place.victim == "a1"
