"""Review 62p, transport: review of today's transport fixes (review 62f).

Sources 1. Review 62f (sources 1) counted a peer in RFC 8215's local-use NAT64 prefix
(`64:ff9b:1::/48`) as the IPv4 address in its last 32 bits, as in the well-known /96. But RFC
8215 reserves a /48 so that an operator can run translators with network-specific prefixes of
any RFC 6052 length in it (it names the /64s the shortest deployed): with a /48, /56 or /64
prefix the IPv4 address is not in the last 32 bits, which hold the zero suffix. Every IPv4
client of a node behind such a translator was then one source, `0.0.0.0` (or, for a /64, 256
sources by the IPv4 address's last byte), one of them holding the per-source cap refused every
other (before review 62f they were at least the /64s of their /16s). Now an address there
whose last 32 bits are no IPv4 source (0.0.0.0/8, x.0.0.0: a shorter prefix's zero suffix) is
a source of its own, whole: one per IPv4 client, whatever the prefix's length.

Listener 1 (a trade-off, decided by the lead: no test): review 62f's listener 2 (the
per-address fair share takes only from addresses whose network holds no fewer than the
newcomer's) refuses a newcomer of the network holding the most while an address of a smaller
network holds many (up to the per-source cap); likewise with frameless connections (62f,
listener 1: network first), a populous network's reconnecting clients give way before a
crowded address of a smaller network. It is 62f's attack with the parties swapped, and no rule
on these counts alone tells them apart. Network first is kept: an address costs an attacker
more than a network's many addresses (an IPv6 /48 is 2^80 of them), and one address holds no
more than the per-source cap.
"""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from tests.test_review62f_refuted import _Socket
from troth.routing import Router
from troth.transport import Listener, TcpSettings, TcpTransport
from troth.transport.connection import source_host
from troth.transport.tcp import TcpConnection


def _embedded(prefix: int, length: int, v4: int) -> str:
    """RFC 6052 (2.2): `v4` in the IPv6 address of the `length`-bit prefix `prefix` (48, 56
    or 64: the bits 64-71 are the zero u octet, the suffix after the address is zero)."""
    high_bits = 64 - length  # of the IPv4 address, before the u octet
    high, low = v4 >> (32 - high_bits), v4 & ((1 << (32 - high_bits)) - 1)
    value = prefix | (high << 64) | (low << (128 - 72 - (32 - high_bits)))
    return str(ipaddress.IPv6Address(value))


LOCAL_USE = 0x0064_FF9B_0001 << 80
CLIENTS = (0xC0000221, 0xC6336421, 0xCB007121)  # 192.0.2.33, 198.51.100.33, 203.0.113.33


@pytest.mark.parametrize("length", [48, 56, 64])
def test_ipv4_clients_through_a_shorter_local_use_prefix_are_sources_apart(length: int) -> None:
    """Three IPv4 clients (the same last byte) through a translator whose network-specific
    prefix is a `length` of 64:ff9b:1::/48 (RFC 6052's example layout: 192.0.2.33 behind a /48
    is `...:c000:2:2100::`): three sources, and with the per-source cap at 1 all three are
    admitted."""
    peers = [_embedded(LOCAL_USE, length, v4) for v4 in CLIENTS]
    assert len({source_host(peer) for peer in peers}) == 3

    async def test() -> None:
        transport = TcpTransport(Router(), TcpSettings(max_connections_per_source=1))
        for peer in peers:
            connection = TcpConnection(transport, outgoing=False, listener=Listener(), peer="?")
            connection.connection_made(_Socket(peer))
        assert transport.counters.refused_per_source == 0
        for connection in transport.connections():
            if connection._consumer is not None:
                connection._consumer.cancel()

    asyncio.run(test())
