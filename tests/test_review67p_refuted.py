"""Review 67p: attacks on review 67c's shield spends (`troth.transport.eviction.ShieldSpends`)
that did NOT work; each test would fail if the defence it names broke.

- Every network counted as spent takes `SHIELD_SPENDS_PER_CONNECTION` x the cap networks
  spending within one `first_frame_timeout`: one fewer leaves a fresh network's newcomer free to
  take a junk connection mid-handshake, and one network's addresses are one spend.
- A spend does not outlive its shield (the loop's monotonic clock): the network's newcomer
  takes another's connection mid-handshake again once it ends, the remembered refusal not
  standing in its way.
- With every network spent, a member with progress is not taken for a newcomer (it is
  refused), and junk gives way again once the spends' shield ends.
- An IPv4-mapped peer is counted as its IPv4 /24.
"""

from __future__ import annotations

import asyncio

from tests.test_review67c_transport import _accept, _stop
from troth.routing import Router
from troth.transport import TcpSettings, TcpTransport
from troth.transport.connection import source_host, source_network
from troth.transport.settings import SHIELD_SPENDS_PER_CONNECTION

CAP = 8


def _node(clock: list[float]) -> TcpTransport:
    """A node's transport at a cap of 8, 6 members (progress made) of six /24s, on `clock`."""
    loop = asyncio.get_running_loop()
    loop.time = lambda: clock[0]  # type: ignore[method-assign]
    transport = TcpTransport(Router(), TcpSettings(max_connections=CAP), authenticated_idle=True)
    for n in range(6):
        member, _socket = _accept(transport, f"192.0.{n}.1")
        member.progressed()
    return transport


def _spend(transport: TcpTransport, networks: int) -> None:
    """Junk from two /24s fills the table; then junk from `networks` more /24s, each evicting
    another's junk mid-handshake (a spend each)."""
    _accept(transport, "10.0.0.1")
    _accept(transport, "10.0.1.1")
    for n in range(networks):
        _connection, socket = _accept(transport, f"10.1.{n}.1")
        assert not socket.aborted


def test_one_network_short_of_the_spends_leaves_a_fresh_network_free() -> None:
    """`kept` - 2 /24s spend (their junk churning the two free slots), then 30 more addresses of
    one of them (no new spend). A fresh /24's newcomer still takes a junk connection
    mid-handshake (the spend before the last); one more /24 spending makes every network spent,
    and the next fresh one's newcomer is refused."""

    async def test() -> None:
        clock = [1000.0]
        transport = _node(clock)
        _spend(transport, SHIELD_SPENDS_PER_CONNECTION * CAP - 2)
        for n in range(30):
            _accept(transport, f"10.1.0.{n + 2}")
        _connection, honest = _accept(transport, "198.51.100.7")
        assert not honest.aborted
        _accept(transport, "10.2.0.1")  # the kept-th spend
        _connection, late = _accept(transport, "198.51.101.7")
        assert late.aborted
        _stop(transport)

    asyncio.run(test())


def test_a_spend_ends_with_its_shield() -> None:
    """203.0.113.9 evicts a client mid-handshake and closes; its next connection, with two
    clients mid-handshake, is refused; 10 s later (the clients there done, one gone, a fresh one in)
    its connection takes the fresh client's again."""

    async def test() -> None:
        clock = [1000.0]
        transport = _node(clock)
        _accept(transport, "198.51.100.7")
        _accept(transport, "198.51.101.7")
        attacker, first = _accept(transport, "203.0.113.9")
        assert not first.aborted
        first_evicted = transport.counters.evicted
        attacker.connection_lost(None)  # (its network holds none again)
        third, _socket = _accept(transport, "198.51.102.7")  # (the table full again)
        _connection, refused = _accept(transport, "203.0.113.9")
        assert refused.aborted
        clock[0] += 10.0
        for connection in transport.connections():  # every client there made progress
            connection.progressed()
        third.connection_lost(None)  # (and one left)
        _connection, fresh = _accept(transport, "198.51.103.7")
        assert not fresh.aborted
        _connection, again = _accept(transport, "203.0.113.9")
        assert not again.aborted
        assert fresh.aborted
        assert transport.counters.evicted > first_evicted
        _stop(transport)

    asyncio.run(test())


def test_every_network_spent_keeps_the_members_and_ends_with_the_shield() -> None:
    """`kept` /24s spend (their junk churning the two free slots); a fresh /24's newcomer is
    refused, no member taken. 10 s on, the spends' shield over, a junk connection gives way to
    it, no member."""

    async def test() -> None:
        clock = [1000.0]
        transport = _node(clock)
        _spend(transport, SHIELD_SPENDS_PER_CONNECTION * CAP)
        _connection, refused = _accept(transport, "198.51.100.7")
        assert refused.aborted
        assert len([c for c in transport.connections() if c.progress]) == 6
        clock[0] += 10.0
        _connection, honest = _accept(transport, "198.51.100.7")
        assert not honest.aborted
        assert len([c for c in transport.connections() if c.progress]) == 6
        _stop(transport)

    asyncio.run(test())


def test_an_ipv4_mapped_peer_is_of_its_ipv4_network() -> None:
    """A dual-stack socket's `::ffff:203.0.113.9` is 203.0.113.0/24, as 203.0.113.10 is."""
    assert source_network(source_host("::ffff:203.0.113.9")) == "203.0.113.0/24"
    assert source_network(source_host("203.0.113.10")) == "203.0.113.0/24"
