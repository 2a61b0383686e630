"""Review 68b, refuted: attacks on the connection table's sources and networks (review 67's
ShieldSpends, `source_host`, `source_network`, `Refusals.admitted`) that did not work, each
kept as a test of the defence that stopped it.

Not kept as a test (it needs root and network namespaces): a link neighbour sending from
addresses of fe80::/10 outside fe80::/64 (`fe80:1::b`, `fe80:0:0:7::b`), each a /64 and /48 of
its own to `source_host`. On a veth pair between two network namespaces (Linux 6.18) its SYN
got no answer: the node routes a link-local reply by its routes (fe80::/64 on the link, the
default route's gateway), so only the party that gets the node's packets for any address (its
router) completes such a handshake, and that party can complete one from any address already.
Nor this (it compares each refusal with a fresh scan through private state): 1,500 random
sequences of newcomers, progress, closes, clock steps and sweeps at tables of 3 to 8, where
`Refusals` never refused a newcomer a scan (`eviction_candidate` without it) admitted."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable

import pytest

from tests.test_review62f_refuted import _Socket
from tests.test_review67c_transport import _stop
from tests.test_review68b_transport import Peername, admitted
from troth.routing import Router
from troth.transport import Listener, TcpSettings, TcpTransport
from troth.transport.tcp import TcpConnection


def _accept(transport: TcpTransport, socket: _Socket) -> TcpConnection:
    connection = TcpConnection(transport, outgoing=False, listener=Listener(), peer="?")
    connection.connection_made(socket)
    return connection


def _admitted(peers: list[str], cap: int) -> list[bool]:
    """Which of `peers`, connecting in turn, are accepted at `cap` connections per source."""
    return admitted(peers, TcpSettings(max_connections=64, max_connections_per_source=cap))


def test_ipv4_compatible_and_translated_addresses_are_one_source_not_their_ipv4_hosts() -> None:
    """IPv4-compatible (`::a.b.c.d`, deprecated by RFC 4291) and SIIT-translated
    (`::ffff:0:a.b.c.d`) peers are the one source ::/64: at a cap of 2 per source, five such
    peers naming five IPv4 hosts get two connections, and none spends the quota of the IPv4
    host it names (192.0.2.7 still connects twice). (::1 is not among them since review 69b:
    it is this host, the loopback source.)"""
    peers = ["::192.0.2.7", "::198.51.100.1", "::ffff:0:203.0.113.9", "::172.16.0.1", "::10.0.0.1"]
    assert _admitted([*peers, "192.0.2.7", "192.0.2.7"], cap=2) == [True, True] + [False] * 3 + [
        True,
        True,
    ]


@pytest.mark.parametrize("v4", ["127.0.0.1", "10.0.0.1", "192.168.1.1", "100.64.0.1"])
def test_a_6to4_peer_naming_a_private_ipv4_address_does_not_spend_that_hosts_quota(
    v4: str,
) -> None:
    """At a cap of 1 per source, a 6to4 peer whose /48 names a loopback, private or shared (CGNAT)
    IPv4 address holds its one connection; the IPv4 host itself still connects (a namespace
    apart: review 67w, transport 1)."""
    sixtofour = ipaddress.IPv6Address((0x2002 << 112) | (int(ipaddress.IPv4Address(v4)) << 80) | 1)
    assert _admitted([str(sixtofour), str(sixtofour), v4], cap=1) == [True, False, True]


def _native(n: int) -> str:
    return f"2001:db8:1:{n:x}::1"  # the /64s of one /48


def _sixtofour(n: int) -> str:
    return f"2002:c633:64{n:02x}::1"  # the 6to4 /48s of 198.51.100.0/24


def _teredo(n: int) -> str:
    client = int(ipaddress.IPv4Address(f"198.51.100.{n}")) ^ 0xFFFFFFFF
    return str(ipaddress.IPv6Address((0x20010000 << 96) | (0x41000001 << 64) | client))


@pytest.mark.parametrize("address", [_native, _sixtofour, _teredo])
def test_one_networks_many_sources_do_not_evict_an_established_client(
    address: Callable[[int], str],
) -> None:
    """A table of 8 at a node: an honest client (192.0.2.7) made progress; one party fills the
    other 7 places from as many sources of one network (the /64s of a /48, the 6to4 /48s or
    Teredo clients of one IPv4 /24), each making progress, then connects from 30 more of them:
    each is refused, and the honest connection stays."""

    async def test() -> tuple[bool, list[bool]]:
        transport = TcpTransport(
            Router(), TcpSettings(max_connections=8, max_connections_per_source=4),
            authenticated_idle=True,
        )  # fmt: skip
        honest = _Socket("192.0.2.7")
        _accept(transport, honest).progressed()
        for n in range(1, 8):
            _accept(transport, _Socket(address(n))).progressed()
        newcomers = [_Socket(address(n)) for n in range(10, 40)]
        for socket in newcomers:
            _accept(transport, socket)
        _stop(transport)
        return honest.aborted, [socket.aborted for socket in newcomers]

    honest_aborted, refused = asyncio.run(test())
    assert not honest_aborted
    assert all(refused)


def test_a_neighbour_in_the_same_slash_24_never_takes_a_nats_last_connection() -> None:
    """A table of 8 at a node: a NAT (198.51.100.7) holds 3 connections that made progress, a
    neighbour of its /24 the other 5 from as many addresses; the neighbour then connects from
    20 fresh addresses of the /24, each making progress once in. The fair share takes the
    NAT's connections down to one (it held two more than each newcomer's address), never its
    last."""

    async def test() -> list[bool]:
        transport = TcpTransport(
            Router(), TcpSettings(max_connections=8, max_connections_per_source=8),
            authenticated_idle=True,
        )  # fmt: skip
        nat = [_Socket("198.51.100.7") for _ in range(3)]
        for socket in nat:
            _accept(transport, socket).progressed()
        for n in range(10, 15):
            _accept(transport, _Socket(f"198.51.100.{n}")).progressed()
        for n in range(20, 40):
            socket = _Socket(f"198.51.100.{n}")
            connection = _accept(transport, socket)
            if not socket.aborted:
                connection.progressed()
        _stop(transport)
        return [socket.aborted for socket in nat]

    assert sorted(asyncio.run(test())) == [False, True, True]


@pytest.mark.parametrize(
    ("peername", "host"),
    [
        (None, "?"),
        ((), "?"),
        (("2001:db8::7", 40000, 0, 0), "2001:db8::/64"),
        (("fe80::7%eth0", 40000, 0, 2), "fe80::/64%eth0"),
        (("::ffff:192.0.2.7", 40000, 0, 0), "192.0.2.7"),
    ],
)
def test_an_unusual_peername_is_admitted_as_a_source_without_a_crash(
    peername: object, host: str
) -> None:
    """asyncio gives None (or nothing) as the peername of a peer that reset before it was
    asked, a 4-tuple for IPv6: each connection is admitted (no exception out of
    `connection_made`, which would leave the socket open and uncounted), as the source it
    names; two peers without a peername are one source (at a cap of 1, the second refused)."""

    async def test() -> tuple[list[bool], str]:
        transport = TcpTransport(
            Router(), TcpSettings(max_connections=8, max_connections_per_source=1)
        )
        sockets = [Peername(peername), Peername(peername)]
        first = _accept(transport, sockets[0])
        _accept(transport, sockets[1])
        _stop(transport)
        return [socket.aborted for socket in sockets], first.host

    aborted, source = asyncio.run(test())
    assert (aborted, source) == ([False, True], host)
