"""Review 66v: attacks on the per-source limits of the TCP listener that did not work (each
test would fail if the defence it names broke)."""

from __future__ import annotations

import asyncio

from tests.test_review66v_transport import _accept
from troth.routing import Router
from troth.transport import TcpSettings, TcpTransport


def _stop(transport: TcpTransport) -> None:
    for connection in transport.connections():
        if connection._consumer is not None:
            connection._consumer.cancel()


def test_many_addresses_of_one_ipv6_64_are_one_source() -> None:
    """The per-source cap at 4: 20 connections from as many addresses of one /64 (one host may
    use them all) are one source: 4 accepted, 16 refused by that cap."""

    async def test() -> None:
        transport = TcpTransport(Router(), TcpSettings(max_connections_per_source=4))
        sockets = [_accept(transport, f"2001:db8:7:1::{n:x}")[1] for n in range(1, 21)]
        assert [s.aborted for s in sockets].count(False) == 4
        assert transport.counters.refused_per_source == 16
        _stop(transport)

    asyncio.run(test())


def test_a_fast_stranger_does_not_evict_a_members_connection_after_its_handshake() -> None:
    """A node's cap at 8: a member's connection from 198.51.100.7 has made progress, and an
    attacker holds the other 7 from addresses of 192.0.2.0/24, its strangers' handshakes done.
    50 more attacker connections from that /24 are refused (its network holds the most, no
    address two more than the newcomer's, nothing idle): the member's connection stays."""

    async def test() -> None:
        transport = TcpTransport(Router(), TcpSettings(max_connections=8), authenticated_idle=True)
        member, member_socket = _accept(transport, "198.51.100.7")
        member.progressed()
        for n in range(1, 8):
            _accept(transport, f"192.0.2.{n}")[0].progressed()
        for n in range(10, 60):
            _accept(transport, f"192.0.2.{n}")
        assert not member_socket.aborted
        assert member in transport.connections()
        assert transport.counters.evicted == 0
        assert transport.counters.refused_over_limit == 50
        _stop(transport)

    asyncio.run(test())


def test_a_flood_of_frameless_connections_from_one_network_evicts_its_own() -> None:
    """A node's cap at 8, a member mid-handshake from 198.51.100.7 among 7 connections from
    192.0.2.0/24 that never send a frame: 50 more from new addresses of that /24 each evict one
    of their own network's (the shield of review 66v, transport 1 keeps the member's, and the
    /24's own frameless ones give way), never the member's."""

    async def test() -> None:
        transport = TcpTransport(Router(), TcpSettings(max_connections=8), authenticated_idle=True)
        for n in range(1, 4):
            _accept(transport, f"192.0.2.{n}")
        member, member_socket = _accept(transport, "198.51.100.7")
        for n in range(4, 8):
            _accept(transport, f"192.0.2.{n}")
        for n in range(10, 60):
            _accept(transport, f"192.0.2.{n}")
        assert not member_socket.aborted
        assert member in transport.connections()
        assert transport.counters.evicted == 50
        _stop(transport)

    asyncio.run(test())
