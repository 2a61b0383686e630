"""Review 56w, refuted attacks on review 56s's relay letters (`/worker/tcp<letters>-h<tag>-
<random>`: the network a relayed sender's keyed hash names, `relayed_network`)."""

from __future__ import annotations

import asyncio

import pytest

import troth.transport.connection
from troth import limits
from troth.errors import DecodeError, RoutingError
from troth.node.channel_sources import source_network_of as _source_network
from troth.routing import Address, RoutedMessage, Router
from troth.routing.address import route_from_cbor
from troth.transport.connection import _accepted_address, relayed_network
from troth.transport.tcp import TcpConnection, TcpTransport


@pytest.fixture(autouse=True)
def _relay_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(troth.transport.connection, "_HOST_KEY", bytes(16))


def _through(hops: list[TcpConnection], sender_route: tuple[Address, ...]) -> RoutedMessage:
    """A message a sender wrote with return route `sender_route`, as it arrives over each of
    `hops` in turn (each connection puts its address at the front, as a router does)."""
    message = RoutedMessage((Address("service", "channels"),), sender_route, b"m1")
    for hop in hops:
        message = RoutedMessage.arrived(message.encode(), hop.address)
    return message


def _accepted(transport: TcpTransport, host: str) -> TcpConnection:
    connection = TcpConnection(transport, outgoing=False, listener=None, peer="?")
    connection.set_peer(host, 40000)
    return connection


def test_a_sender_behind_a_relay_cannot_name_another_network_in_its_own_route() -> None:
    """The party writes the victim's relay address (letters and tag) in its return route: the
    node reads the relay's hop for the party, the second of the route, and the party's
    network."""

    async def test() -> None:
        relay, node = TcpTransport(Router()), TcpTransport(Router())
        to_relay = TcpConnection(node, outgoing=True, listener=None, peer="relay:4000")
        victim, party = _accepted(relay, "10.1.1.1"), _accepted(relay, "10.2.2.2")
        forged = (victim.address, Address("worker", "chan-0123456789abcdef.dec"))
        mine = to_relay.origin(_through([party, to_relay], forged).return_route)
        theirs = to_relay.origin(_through([victim, to_relay], forged[1:]).return_route)
        assert _source_network(mine) != _source_network(theirs)
        assert _source_network(mine) == _source_network(
            to_relay.origin((to_relay.address, _accepted(relay, "10.2.2.9").address))
        )

    asyncio.run(test())


def test_a_direct_peer_cannot_present_a_relayed_network() -> None:
    """A peer the node accepted puts a relay's address of the victim's network second in its
    return route: it is counted by its own host and /24, never as relayed."""

    async def test() -> None:
        node = TcpTransport(Router())
        party = _accepted(node, "10.2.2.2")
        victims = _accepted_address("tcp", "10.1.1.1")
        route = _through([party], (victims,)).return_route
        assert party.relayed_sender(route) is None
        assert _source_network(party.origin(route)) == "tcp 10.2.2.0/24"

    asyncio.run(test())


def test_no_address_or_key_of_another_kind_reads_as_a_relayed_network() -> None:
    """The key's separators hold spaces, which no address value may (as parsed from text or
    read from a route header), and a key of a direct peer, a channel or a relay's untagged
    hop names no relayed network."""
    for value in ("tcp-h01234567-0123456789abcdef of network abcdefghijk", "a via host b"):
        with pytest.raises(RoutingError):
            Address("worker", value)
        with pytest.raises(DecodeError):
            route_from_cbor([["worker", value]])
    for key in (
        "tcp 10.1.1.1",
        "channel T" + "0" * 64,
        "/worker/tcp-0123456789abcdef via /worker/tcp-0123456789abcdef",
        "/worker/tcp-0123456789abcdef",
    ):
        assert relayed_network(key) is None


def test_a_relay_behind_a_relay_is_counted_by_the_nearest_relays_hop() -> None:
    """A sender behind relay 2, which reaches relay 1 (the node's) over a connection relay 1
    accepted: the node counts it by relay 1's hop for relay 2's host, so senders of other
    networks behind relay 2 are one network and source there (relay 2's), not the victims'."""

    async def test() -> None:
        one, two, node = TcpTransport(Router()), TcpTransport(Router()), TcpTransport(Router())
        to_relay = TcpConnection(node, outgoing=True, listener=None, peer="relay:4000")
        from_two = _accepted(one, "10.9.9.9")
        keys = [
            to_relay.origin(_through([_accepted(two, host), from_two, to_relay], ()).return_route)
            for host in ("10.1.1.1", "10.2.2.2")
        ]
        assert keys[0] == keys[1]
        direct = to_relay.origin(_through([_accepted(one, "10.9.9.1"), to_relay], ()).return_route)
        assert _source_network(keys[0]) == _source_network(direct)  # relay 2's /24
        victim = to_relay.origin(_through([_accepted(one, "10.1.1.1"), to_relay], ()).return_route)
        assert _source_network(keys[0]) != _source_network(victim)

    asyncio.run(test())


def test_a_route_of_relay_hops_at_the_route_limit_fits_the_header_limit() -> None:
    """Both routes of MAX_ROUTE_LENGTH hops of the relay's longer form (eleven letters more)
    encode within MAX_ROUTE_HEADER_BYTES and decode at the other side; a relay's hop put on a
    return route of the most hops is refused as too long, not written past the limit."""
    hops = tuple(_accepted_address("tcp", f"10.{n}.0.1") for n in range(limits.MAX_ROUTE_LENGTH))
    message = RoutedMessage(hops, hops, b"")
    header = message.header()
    assert len(header) - 2 <= limits.MAX_ROUTE_HEADER_BYTES
    decoded = RoutedMessage.decode(message.encode())
    assert (decoded.onward, decoded.return_route) == (hops, hops)
    with pytest.raises(RoutingError):
        RoutedMessage.arrived(message.encode(), hops[0])
    assert len(hops[0].value) <= limits.MAX_ADDRESS_TEXT


def test_the_letters_are_the_relays_key_and_the_network_alone() -> None:
    """One network's hosts get the same letters, another network other ones, and another key
    (a relay restarted, another relay) other letters for the same network: nothing in them a
    sender can pick or another relay's letters link."""
    letters = troth.transport.connection._network_letters
    a, b = _accepted_address("tcp", "10.1.1.1"), _accepted_address("tcp", "10.1.1.2")
    other = _accepted_address("tcp", "10.1.2.1")
    assert letters(a) == letters(b) != letters(other)
    troth.transport.connection._HOST_KEY = bytes(15) + b"\x01"
    assert letters(_accepted_address("tcp", "10.1.1.1")) != letters(a)
