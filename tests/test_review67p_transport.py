"""Review 67p, transport: the networks the TCP connection table counts, against review 67c's
shield spends (issue #8).

Transport 1 ("one IPv4 address is many IPv6 networks"). `source_host` counted an IPv4
client that reaches the node through 6to4 (`2002::/16`, RFC 3056: the client's IPv4 address
in bits 16-47) or Teredo (`2001::/32`, RFC 4380: the Teredo server's IPv4 address in bits
32-63, the client's own, bit-inverted, in the last 32) as an IPv6 /64, and `source_network` as
its /48. A 6to4 /48 is one IPv4 address, so one IPv4 /24 was 256 networks; a Teredo /48 is the
top half of the server's address, which the client writes itself (the relay answers the
client's own address and port), so one IPv4 address was 65,536 networks. Each network evicts
another network's client mid-handshake once per `first_frame_timeout` (review 67c, transport
1), so one IPv4 /24 killed 256 handshakes each 10 s where it killed one, and one address
through Teredo filled the spends (`SHIELD_SPENDS_PER_CONNECTION` x the cap), after which no
newcomer took another network's connection mid-handshake at all. Such a peer is now counted
as its IPv4 address (as an IPv4-mapped or NAT64 one was: review 29b, sources 3), so its
network is the IPv4 /24.
"""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from tests.test_review62f_refuted import _Socket
from troth.routing import Router
from troth.transport import Listener, TcpSettings, TcpTransport
from troth.transport.connection import source_host, source_network
from troth.transport.tcp import TcpConnection


def _sixtofour(v4: str, subnet: int) -> str:
    """A 6to4 address of IPv4 address `v4` (its /48), in its subnet (a /64) `subnet`."""
    return str(ipaddress.IPv6Address((0x2002 << 112) | (int(ipaddress.IPv4Address(v4)) << 80)
                                     | (subnet << 64) | 1))  # fmt: skip


def _teredo(server: int, v4: str) -> str:
    """A Teredo address of the client at IPv4 address `v4` through the server `server` (a
    32-bit number the client writes itself), port 40000."""
    client = int(ipaddress.IPv4Address(v4)) ^ 0xFFFFFFFF
    port = 40000 ^ 0xFFFF
    return str(ipaddress.IPv6Address((0x20010000 << 96) | (server << 64) | (port << 32) | client))


@pytest.mark.parametrize(
    "peer",
    [_sixtofour("203.0.113.9", 0), _sixtofour("203.0.113.9", 7), _teredo(0x41000001, "203.0.113.9"),
     _teredo(0xFFFE0001, "203.0.113.9")],
)  # fmt: skip
def test_a_tunnelled_ipv4_peer_is_its_ipv4_address(peer: str) -> None:
    """A 6to4 or Teredo peer is the source its IPv4 address is, of that address's /24."""
    assert source_host(peer) == "203.0.113.9"
    assert source_network(source_host(peer)) == "203.0.113.0/24"


def _accept(transport: TcpTransport, peer: str) -> tuple[TcpConnection, _Socket]:
    socket = _Socket(peer)
    connection = TcpConnection(transport, outgoing=False, listener=Listener(), peer="?")
    connection.connection_made(socket)
    return connection, socket


@pytest.mark.parametrize("tunnel", ["6to4", "teredo"])
def test_one_ipv4_network_through_a_tunnel_evicts_one_client_mid_handshake(tunnel: str) -> None:
    """A node's cap at 8, held by 7 members (progress made) and a client mid-handshake; after
    each of ten more clients from ten other /24s, the attacker opens a connection from a fresh
    6to4 /48 of its IPv4 /24 (another address of it each time), or a fresh Teredo /48 of its one
    IPv4 address (another server value each time). It evicts one client mid-handshake within
    the shield, as from its IPv4 addresses themselves, not each of them."""

    def attacker(n: int) -> str:
        if tunnel == "6to4":
            return _sixtofour(f"203.0.113.{n + 1}", 0)
        return _teredo(0x41000001 + (n << 16), "203.0.113.9")

    async def test() -> None:
        transport = TcpTransport(Router(), TcpSettings(max_connections=8), authenticated_idle=True)
        for n in range(7):
            member, _socket = _accept(transport, f"192.0.{n}.1")
            member.progressed()
        clients = [_accept(transport, "198.51.100.7")]
        killed = 0
        for n in range(10):
            alive = [socket for _client, socket in clients if not socket.aborted]
            _accept(transport, attacker(n))
            killed += sum(socket.aborted for socket in alive)
            clients.append(_accept(transport, f"198.51.{n}.7"))
        assert killed == 1
        for connection in transport.connections():
            if connection._consumer is not None:
                connection._consumer.cancel()

    asyncio.run(test())
