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

Listener 1 (left as a strict xfail): review 62f's listener 2 (the per-address fair share takes
only from addresses whose network holds no fewer than the newcomer's) refuses a newcomer of the
network holding the most while an address of a smaller network holds many: see the test.
The same with frameless connections (62f, listener 1: network first): in a reconnect storm of
a populous network, its connections give way before a crowded address of a smaller network.
"""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from tests.test_review60f_refuted import _Held, _table, _weigh
from tests.test_review62f_refuted import _Socket
from troth.routing import Router
from troth.transport import Listener, TcpSettings, TcpTransport
from troth.transport.connection import source_host
from troth.transport.eviction import Refusals
from troth.transport.frameless import Frameless
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


@pytest.mark.xfail(strict=True, reason="listener 1: 62f listener 2 shields a crowded address")
def test_a_populous_networks_newcomer_has_a_crowded_address_of_a_smaller_one_give_way() -> None:
    """Listener 1 (left: it conflicts with review 62f, listener 2, and needs a decision). At
    the cap, one network (an operator's /24 of agents, a cloud subnet, a carrier's NAT pool)
    holds 70 connections, one an address; an attacker's one address in a /24 of its own holds
    8, all active (a party with a few such addresses, each under the per-source cap and under
    the populous network's count, holds the rest of the table). A newcomer from the populous
    network is refused: since 62f, listener 2, the per-address fair share takes only from
    addresses whose network holds no fewer than the newcomer's, and 8 < 70 (before, the
    attacker's address gave way: it holds at least two more than the newcomer's). The shape is
    62f's listener 2 with the parties swapped, so no rule on these counts alone tells them
    apart: which party to favour is the lead's call."""
    company = _table([(f"10.1.1.{n}", "10.1.1.0/24") for n in range(70)])
    attacker = _table([("192.0.2.7", "192.0.2.0/24")] * 8)
    table = company + attacker
    newcomer = _Held("10.1.1.200", "10.1.1.0/24", progress=0, frames_read=0)
    victim = _weigh(table, newcomer, Refusals(), 1.0)
    assert isinstance(victim, _Held)
    assert victim.host == "192.0.2.7"


@pytest.mark.xfail(strict=True, reason="listener 1: network first spares a crowded address")
def test_a_populous_networks_reconnecting_clients_outlast_a_crowded_address() -> None:
    """Listener 1, frameless (left, as above). Twelve clients of one /24 reconnecting (one
    connection each, none brought its first frame yet), among them an attacker's four
    frameless connections from one address of its own /24: the victim is a client's (the
    network holding the most: 62f, listener 1), where before it was the attacker's (the
    address holding the most). Which party to favour is the lead's call."""
    index: Frameless[_Held] = Frameless()
    for n in range(12):
        index.add(_Held(f"10.1.1.{n}", "10.1.1.0/24", progress=0), f"10.1.1.{n}")
        if n < 4:
            index.add(_Held("192.0.2.7", "192.0.2.0/24", progress=0), "192.0.2.7")
    assert index.victim().host == "192.0.2.7"
