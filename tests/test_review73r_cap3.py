"""Review 73r, cap3: reviews 73k/73o's refusal of a party behind a node at the node's cap on
open channels (`troth.node.channel_cap`), attacked (each test failed on the code before its fix).

Cap3 1 (medium: members behind a node locked out by strangers). At the cap, with strangers'
channels held, a member takes a stranger's place (review 54k: strangers filling the cap cannot
lock members out). A member behind node b whose strangers' source holding the most was b's own,
none of b's parties in it, was refused (73k kept 2, 73o cap2 1), and a member's channel never
joins the strangers' ranking, so every member behind b was refused for as long as b held the
most: a stranger with one channel in each of many networks made b, holding two, the top, and
held thousands of places while b's members could hold none. Now such a member takes the place
of the strangers' channel that gives way with b's own set aside (the source holding the most
after b's within b's network, else the network holding the most after b's): b's own channel
still never gives way to it, and it takes no member's place while a stranger's is held.
"""

from __future__ import annotations

import itertools
import random

from tests.test_channel_manager import Net, run, until
from tests.test_review54k_channels import open_as_stranger
from tests.test_review72i_ends import _Behind
from tests.test_review73g_notices3 import stranger_relayed
from tests.test_review73k_kept import _reply
from troth.channel import ChannelState
from troth.node.channel_cap import OpenChannels, Opener
from troth.node.channels import LISTENER
from troth.ranked import Ranked

A0 = frozenset({b"a0"})


def _spread_strangers(cap: OpenChannels[int], own: int, spread: int) -> int:
    """b (a stranger host, network "nb") holds `own` channels of its own; a stranger `spread`
    more, one in each network of its own; the members of a0 fill the rest of the cap. Returns
    the next end."""
    end = 0
    for end in range(own):
        cap.add(end, stranger=True, source="b", network="nb")
    for end in range(own, own + spread):
        cap.add(end, stranger=True, source=f"s{end}", network=f"n{end}")
    for end in range(own + spread, cap.limit):
        cap.add(end, stranger=False, source="m", network="nm", authorities=A0)
    return cap.limit


def test_strangers_spread_thin_lock_no_member_behind_a_node_out() -> None:
    """Cap3 1: cap 8 (strangers' part 6): b holds two of its own, a stranger four, one in each
    of four networks; two members of a0 the kept quarter. A member of a0 behind b opens a
    channel: admitted, a stranger's (the oldest of the four) giving way, b's own kept (before:
    refused, at message 3 and at take-in, while the stranger held four places)."""
    cap: OpenChannels[int] = OpenChannels(8)
    _spread_strangers(cap, own=2, spread=4)
    member = Opener(stranger=False, source="b", network="nb", authorities=A0, behind=True)
    assert cap.admits(**member)
    place = cap.place(**member)
    assert (place.admitted, place.victim) == (True, 2)


def test_members_behind_a_node_flooding_never_take_its_own_places() -> None:
    """Cap3 1, b's side (73g/73k's goal): members behind b keep opening channels at the cap;
    each takes a stranger's place until only b's own are left, then is refused; b's own two
    are never closed, and b's own next channel still finds a place (its own oldest, churning
    its own, as a stranger flooding from one source does)."""
    cap: OpenChannels[int] = OpenChannels(8)
    end = _spread_strangers(cap, own=2, spread=4)
    member = Opener(stranger=False, source="b", network="nb", authorities=A0, behind=True)
    taken = []
    for _ in range(6):
        place = cap.place(**member)
        assert cap.admits(**member) == place.admitted
        if not place.admitted:
            break
        assert place.victim is not None
        assert place.victim >= 2
        taken.append(place.victim)
        cap.discard(place.victim)
        cap.add(end, **member)
        end += 1
    assert sorted(taken) == [2, 3, 4, 5]
    assert 0 in cap
    assert 1 in cap
    assert cap.strangers == 2
    own = Opener(stranger=True, source="b", network="nb", authorities=frozenset(), behind=False)
    assert cap.place(**own).victim == 0


def test_the_network_holding_the_most_without_b_s_own_gives_way() -> None:
    """Cap3 1: b's network also holds a neighbour's single channel, another network two
    strangers' channels of one source each: a member behind b takes the other network's
    oldest's place (it holds the most with b's own set aside: review 73u, cap4 1, where the
    neighbour's went, b's own ranking b's network), a member not behind b b's own oldest; with
    the other network down to one, b's network, its neighbour's channel the oldest, gives way."""
    cap: OpenChannels[int] = OpenChannels(8)
    for end in range(3):
        cap.add(end, stranger=True, source="b", network="nb")
    cap.add(3, stranger=True, source="nbr", network="nb")
    cap.add(4, stranger=True, source="x", network="nx")
    cap.add(5, stranger=True, source="y", network="nx")
    for end in (6, 7):
        cap.add(end, stranger=False, source="m", network="nm", authorities=A0)
    member = Opener(stranger=False, source="b", network="nb", authorities=A0, behind=True)
    assert cap.place(**member).victim == 4
    elsewhere = Opener(stranger=False, source="f", network="nf", authorities=A0, behind=False)
    assert cap.place(**elsewhere).victim == 0
    cap.discard(5)
    cap.add(8, stranger=False, source="m", network="nm", authorities=A0)
    assert cap.place(**member).victim == 3


def test_the_key_holding_the_most_but_one_is_the_scans() -> None:
    """Cap3 1's fix: `Ranked.most_but` agrees with a scan of the groups (the most, then the
    oldest first), over random adds and removes, and leaves `most` as it was."""
    rng = random.Random(73)
    order = itertools.count()
    seqs: dict[int, int] = {}
    ranked: Ranked[str, int] = Ranked(seqs.__getitem__)
    held: dict[int, str] = {}
    for end in range(600):
        if held and rng.random() < 0.4:
            gone = rng.choice(sorted(held))
            ranked.remove(held.pop(gone), gone)
        else:
            seqs[end], held[end] = next(order), f"k{rng.randrange(8)}"
            ranked.add(held[end], end)
        skip = f"k{rng.randrange(9)}"
        rest = [(-len(v), seqs[next(iter(v))], k) for k, v in ranked.groups.items() if k != skip]
        before = ranked.most(None) if held else None
        assert ranked.most_but(skip) == (min(rest)[2] if rest else None)
        assert (ranked.most(None) if held else None) == before


def test_a_member_behind_a_relayed_node_gets_a_strangers_place_in_process() -> None:
    """Cap3 1, through the channel manager and one relayed node: the hub's cap 8 (strangers'
    part 6); b (a stranger at the hub, 10.0.0.2) holds two channels of its own, strangers one
    each from four other /24s, two members behind b the kept quarter; a third member behind b
    opens one: open, a spread stranger's channel evicted, b's own both open (before: refused,
    `peer not allowed`, none evicted)."""

    async def test(net: Net) -> None:
        hub, b = await stranger_relayed(net)
        behind = _Behind(net, hub, b)
        own = [await b.manager.open((behind.connection.address,)) for _ in range(2)]
        for network in range(4):
            await open_as_stranger(net, net.peer(f"10.7.{network}.1"))
        for number in range(2):
            await behind.open(_reply(number))
        assert len(hub.manager.ends) == 8
        channel = behind.channel(_reply(2), opens=True)
        (first,) = channel.outgoing()
        await behind._send(first, (behind.connection.address, LISTENER), _reply(2))
        await until(lambda: channel.state is ChannelState.OPEN or channel.closed)
        assert channel.state is ChannelState.OPEN
        assert hub.manager.counters.evicted_open == 1
        assert all(end.channel.state is ChannelState.OPEN for end in own)

    run(test)
