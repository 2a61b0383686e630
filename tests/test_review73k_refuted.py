"""Review 73k: attacks on the room a node keeps for its own at another node (73c rooms 1-4) and
on the sources at the node's cap on open channels (the lead's 18de35a7; 73k kept 1-2) that did
not work (each passes on the code as it is; kept so a change that makes one work fails here)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import cast

import pytest

from tests.test_review72p_ends2 import _connection
from tests.test_review73c_refuted import _REPLY, _Clock
from troth.node import opening_rates
from troth.node.channel_cap import OpenChannels, Opener
from troth.node.channel_ends import ChannelEnd
from troth.node.channel_sources import behind_other_end, forwarded_room
from troth.node.half_open import half_open_victim
from troth.node.opening_rates import OpeningRates
from troth.routing import Address

_NET = "tcp 192.0.2.0/24"


def _tagged(tag: str) -> Address:
    """A relay's name for a connection it accepted from the host tagged `tag`."""
    return Address("worker", f"tcp-h{tag}-00000000000000{tag[:2]}")


def test_a_forwarded_opening_refused_by_its_network_gives_the_share_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """73k refuted 1 (refunds of `keep=`): a neighbour's own openings bring the network's
    budget down to the part kept; a party behind node `.7` is then refused by the network
    after its source's share paid: the share is given back whole (the node's own then take
    its whole burst elsewhere); a forwarded opening whose handshake completes is given back
    to both budgets, so the members' finished handshakes never eat the part kept, and the
    node's own still take it."""
    monkeypatch.setattr(opening_rates, "asyncio", _Clock)
    rates = OpeningRates(rate=1, burst=32)
    kept = 32 - forwarded_room(32)
    for _ in range(32 - kept):
        assert rates.take("tcp 192.0.2.9", _NET)
    assert not rates.take("tcp 192.0.2.7", _NET, forwarded=True)
    assert sum(rates.take("tcp 192.0.2.7", "tcp 198.51.100.0/24") for _ in range(40)) == 32
    other = OpeningRates(rate=1, burst=32)
    for _ in range(100):  # each finished: given back
        assert other.take("tcp 192.0.2.7", _NET, forwarded=True)
        other.give_back("tcp 192.0.2.7", _NET)
    assert sum(other.take("tcp 192.0.2.7", _NET) for _ in range(40)) == 32


def test_no_route_past_the_relay_makes_another_host_the_relayed_node() -> None:
    """73k refuted 2 (route shapes): over a's connection to the relay, node b's own route is
    the relay's connection to b (tagged by b's host) and b's channel end. A stranger on another
    host, through the same relay, copying b's tagged connection and a channel end's reply
    address into the route it names, counts under its own host's key, and as a party behind
    it: never b's key, never b's own; a member behind b (b's connection to it put in the
    route) is behind b whatever it names after it."""
    made = _connection(True, "192.0.2.8:4000")
    to_b, to_stranger, at_b = _tagged("b0b0b0b0"), _tagged("5a5a5a5a"), _tagged("e7e7e7e7")
    own = (made.address, to_b, _REPLY)
    b_key = made.origin(own)
    assert not behind_other_end(made, own, b_key)
    for named in ((to_b, _REPLY), (to_b,), (made.address, to_b, _REPLY), (_REPLY, to_b)):
        route = (made.address, to_stranger, *named)
        assert made.origin(route) != b_key
        assert behind_other_end(made, route, made.origin(route))
    after: tuple[tuple[Address, ...], ...] = ((), (_REPLY,), (to_b, _REPLY), (_REPLY, _REPLY))
    for tail in after:
        route = (made.address, to_b, at_b, *tail)
        assert made.origin(route) == b_key
        assert behind_other_end(made, route, b_key)


def test_a_party_behind_a_node_never_takes_its_nodes_place_at_the_cap() -> None:
    """73k refuted 3 (the cap, sans-IO, any order): channels of strangers and members, own and
    behind a node, of few networks, sources and authorities, opened and closed at random at a
    small cap: no newcomer behind a node ever takes the place of its own source's own channel
    (strangers' places or members'), `admits` agrees with `place` for each, and the index of
    the parties behind a node is emptied with the channels."""
    rng = random.Random(7300)
    cap: OpenChannels[int] = OpenChannels(12, lambda: 1)  # shares of 12 // 3
    held: dict[int, tuple[str, bool]] = {}
    for end in range(4000):
        network = f"n{rng.randrange(3)}"
        source, behind = f"{network}s{rng.randrange(2)}", rng.random() < 0.5
        stranger = rng.random() < (0.7 if end // 500 % 2 == 0 else 0.1)  # members alone at times
        authorities = frozenset() if stranger else frozenset({rng.choice((b"a0", b"a1"))})
        where = Opener(
            stranger=stranger,
            source=source,
            network=network,
            authorities=authorities,
            behind=behind,
        )
        admits, place = cap.admits(**where), cap.place(**where)
        assert place.admitted == admits
        if place.victim is not None:
            assert not behind or held[place.victim] != (source, False)
            cap.discard(place.victim)
            del held[place.victim]
        if place.admitted:
            cap.add(end, **where)
            held[end] = (source, behind)
        if rng.random() < 0.3 and held:
            gone = rng.choice(list(held))
            cap.discard(gone)
            del held[gone]
    for end in list(held):
        cap.discard(end)
    assert not cap._behind
    assert not len(cap)


@dataclass(eq=False)
class _End:
    """What `half_open_victim` reads of a half-open end."""

    source_key: str
    forwarded: bool


def test_parties_behind_a_node_giving_way_first_gain_a_tied_neighbour_one_at_most() -> None:
    """73k refuted 4 (the half-open table, 73c rooms 3): of the sources tied at the most, a
    party behind a node's handshake gives way first, even a newer one than a neighbour's own
    (a tie-break across sources, not within one). Host J, all its own, and node b, half its
    handshakes its members', hold the table of one /24 equally; newcomers from other networks
    each evict one, and J and b refill it in turn: J never holds more than one above b."""
    networks: dict[ChannelEnd, str] = {}
    for number in range(8):
        networks[cast(ChannelEnd, _End("J", False))] = _NET
        networks[cast(ChannelEnd, _End("b", number % 2 == 1))] = _NET
    for turn in range(200):
        victim = half_open_victim(networks, "x", "tcp 198.51.100.0/24")
        assert victim is not None
        del networks[victim]
        held = Counter(end.source_key for end in networks)
        assert held["J"] - held["b"] <= 1
        refill = "J" if held["J"] < held["b"] else "b"
        networks[cast(ChannelEnd, _End(refill, refill == "b" and turn % 2 == 0))] = _NET
