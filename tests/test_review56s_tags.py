"""Review 56s, relay host tags (review 56m, relayed budgets 1): a relay names an accepted
connection `/worker/tcp-h<tag>-<random>`, and since review 56m the tag's first four hex digits
are a keyed hash of the sender's network (an IPv4 /24, an IPv6 /48), its last four of the host;
the node behind the relay counts a relayed stranger's enroll budget, and the fair share of
half-open handshakes, by those four digits (`network_of_tag`, `_source_network`).

Tags 1: four hex digits are 65,536 networks. A hosted authority tracks MAX_ENROLL_REQUEST_SOURCES
(4,096) strangers' budgets: networks that many behind one relay share budgets in about 128
pairs (the birthday bound) where directly each network has its own, and a party holding an IPv6
/32 (65,536 /48s, an allocation a hosting provider has) holds a network of the same four digits
as most other networks behind the relay: spending it spends theirs, and takes their share of
half-open handshakes. The relay's key is secret and per process, so the party cannot aim, but
it does not need to: its networks cover about two thirds of all the four-digit values, and it
learns which of them a victim has (the tag is in the return route its own node behind the relay
sees when the victim reaches it).

Tags 2: the host part is four hex digits too, where it was eight before review 56m: the hosts
of one network are 65,536 sources at the node behind the relay (its per-source channel limits,
its request lanes), so the /64s of a /48 share them in pairs (the birthday bound at 256), and a
party with /64s in a victim's /48 fills the victim's per-source channel limit from its own.

The address's form is what nodes of before read (`[a-z]+-h<8 hex>-<16 hex>`, the sixteen random
digits keeping it unguessable): a form of its own would be untagged to them (each connection a
source again, review 29b's finding). Were strict xfails until the relay names the network in
NETWORK_LETTERS (a-z, about 51 bits) after the connection's kind, which nodes of before read as
part of the kind, and the tag is the host's alone again (32 bits); a relayed node counts a
sender's network by the letters (`relayed_network`), a relay's without them by its tag's first
four digits as review 56m did. The relay's key is fixed here so each test is decided (with a
random one, these fail about once in a thousand runs, when two of the hashes meet).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re

import pytest

import troth.transport.connection
from troth.limits import MAX_ENROLL_REQUEST_SOURCES
from troth.node.channel_sources import source_network_of as _source_network
from troth.routing import Address, Router
from troth.transport.connection import _accepted_address, host_tag
from troth.transport.tcp import TcpConnection, TcpTransport


def _relayed(hosts: list[str]) -> list[str]:
    """The origin keys at a node of senders from `hosts` (as `source_host` gives them)
    relayed to it over its connection to one relay: the relay's tag of each in the return
    route (`Connection.origin`)."""

    async def keys() -> list[str]:
        node = TcpTransport(Router())
        to_relay = TcpConnection(node, outgoing=True, listener=None, peer="relay:4000")
        hops = [_accepted_address("tcp", host) for host in hosts]
        return [to_relay.origin((to_relay.address, hop)) for hop in hops]

    return asyncio.run(keys())


@pytest.fixture(autouse=True)
def _relay_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(troth.transport.connection, "_HOST_KEY", bytes(16))


def test_tags1_networks_as_many_as_the_tracked_sources_are_as_many_budgets() -> None:
    """4,096 /24s behind one relay are 4,096 networks, as they are directly."""
    hosts = [f"10.{n >> 8}.{n & 0xFF}.1" for n in range(MAX_ENROLL_REQUEST_SOURCES)]
    networks = {_source_network(key) for key in _relayed(hosts)}
    assert len(networks) == MAX_ENROLL_REQUEST_SOURCES


def test_tags1_a_party_with_an_ipv6_slash32_shares_no_other_networks_budget() -> None:
    """Sixteen networks' /48s behind the relay, and a party's 65,536 /48s of one /32: no
    network of the party's is counted as one of the sixteen."""
    victims = [f"2001:db9:{n:x}::/64" for n in range(16)]
    party = [f"2001:db8:{n:x}::/64" for n in range(2**16)]
    networks = [_source_network(key) for key in _relayed(victims + party)]
    theirs, mine = set(networks[:16]), set(networks[16:])
    assert len(theirs) == 16
    assert not mine & theirs


def test_tags2_the_slash64s_of_one_slash48_are_as_many_sources() -> None:
    """4,096 /64s of one /48 behind the relay are 4,096 sources (its per-source channel
    limits), as they are directly, and as they were through a relay before review 56m."""
    network = ipaddress.IPv6Network("2001:db8:7::/48")
    hosts = [str(sub) for sub, _ in zip(network.subnets(new_prefix=64), range(4096), strict=False)]
    keys = _relayed(hosts)
    assert len({_source_network(key) for key in keys}) == 1  # one network, as directly
    assert len(set(keys)) == 4096


def test_tags_a_node_of_before_reads_the_host_tag_and_a_relay_of_before_still_counts() -> None:
    """A node of before matches the new address with its pattern and reads the host's tag
    from it (one source per host, as before); a relay of before (its kind alone before the
    tag) is counted here by host, each its own network, as before review 56m (review 56w,
    tags 1: by the tag's first four digits, any two hosts of 65,536 shared one)."""
    before = re.compile(r"[a-z]+-h([0-9a-f]{8})-[0-9a-f]{16}")  # (review 29b's _TAGGED)
    hop = _accepted_address("tcp", "10.6.6.6")
    tagged = before.fullmatch(hop.value)
    assert tagged is not None
    assert tagged.group(1) == host_tag(hop)
    old = [
        Address("worker", f"tcp-h{tag}-{n:016x}")
        for n, tag in enumerate(("abcd0001", "abcd0001", "abcd0002"))
    ]

    async def keys() -> list[str]:
        to_relay = TcpConnection(TcpTransport(Router()), outgoing=True, listener=None, peer="r:1")
        return [to_relay.origin((to_relay.address, hop)) for hop in old]

    one, same, other = (_source_network(key) for key in asyncio.run(keys()))
    assert one == same != other
