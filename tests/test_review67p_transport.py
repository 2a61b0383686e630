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

Transport 2 ("a spent network's newcomers scan again after each change"). The remembered
refusal (`troth.transport.eviction.Refusals`, review 60f, listener 1) was forgotten whenever a
connection came or went. One address refreshing its own connection mid-handshake (a spent
network's newcomer takes its own) changes the table each time; a connection from a network
that spent its shielded eviction and holds none then finds nothing to give way, but only after
a scan of the whole table (~0.4 ms at 1,024). Alternating the two, each second connection made
the node scan: the cost review 60f bounded, from one spend per 10 s (before review 67c it took
a network holding more connections with progress than any kept one's). A connection gone now
keeps what the scan saw (it only lowers the counts it bounds), and one accepted raises it to
bound the newcomer (`Refusals.admitted`): the refused connections are answered without a scan.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_review62f_refuted import _Socket
from tests.test_review67c_transport import _stop
from troth.routing import Router
from troth.transport import Listener, TcpSettings, TcpTransport
from troth.transport import eviction as eviction_module
from troth.transport.connection import source_host, source_network
from troth.transport.eviction import Refusals, ShieldSpends, eviction_candidate
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
    """A 6to4 or Teredo peer is one source per IPv4 address it names (its subnet, the Teredo
    server, flags and port dropped), of one network per that address's /24, apart from the
    native IPv4 host (review 67w, transport 1)."""
    source = source_host(peer)
    if peer.startswith("2002:"):
        assert source == "2002:cb00:7109::/48"
        assert source_network(source) == "2002:cb00:7100::/40"
    else:
        assert source == "2001:0:cb00:7109::/64"
        assert source_network(source) == "2001:0:cb00:7100::/56"
    assert source != "203.0.113.9"


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


def test_a_spent_networks_newcomers_are_refused_without_a_scan_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cap of 64: 55 members (progress made), 9 junk connections from 9 /24s. The attacker's
    203.0.113.9 evicts one of them mid-handshake (its network's spend) and closes; then, 100
    times, 198.51.0.7 refreshes its junk connection (its own network's gives way to it) and
    203.0.113.9 connects again. Each of those is refused; the table is scanned once for them,
    not 100 times."""
    scans = collections.Counter[str]()
    weigh = eviction_module.eviction_candidate

    def counted(*args: Any, **kwargs: Any) -> Any:
        scans[args[1].host] += 1
        return weigh(*args, **kwargs)

    async def test() -> None:
        transport = TcpTransport(Router(), TcpSettings(max_connections=64), authenticated_idle=True)
        for n in range(55):
            member, _socket = _accept(transport, f"192.0.{n}.1")
            member.progressed()
        for n in range(9):
            _accept(transport, f"198.51.{n}.7")
        spender, _socket = _accept(transport, "203.0.113.9")
        assert transport.counters.evicted == 1
        spender.connection_lost(None)
        _accept(transport, "198.51.9.7")
        monkeypatch.setattr("troth.transport.tcp.eviction_candidate", counted)
        for _ in range(100):
            _connection, junk = _accept(transport, "198.51.0.7")
            assert not junk.aborted
            _connection, refused = _accept(transport, "203.0.113.9")
            assert refused.aborted
        assert transport.counters.refused_over_limit == 100
        assert scans["203.0.113.9"] <= 1
        _stop(transport)

    asyncio.run(test())


_OP = st.tuples(
    st.sampled_from(["arrive", "arrive", "progress", "progress", "close"]),
    st.integers(0, 7),  # network (an IPv4 /24)
    st.integers(0, 1),  # address of it
    st.sampled_from([0.0, 0.0, 0.5, 4.0, 11.0, 61.0]),  # time passing
    st.integers(0, 7),  # which connection
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_OP, min_size=10, max_size=40))
def test_a_remembered_refusal_is_one_a_scan_gives_on_every_path(
    ops: list[tuple[str, int, int, float, int]],
) -> None:
    """The transport itself (a cap of 4, 2 per address; the loop's clock set by the test) under
    arrivals, first progress and closes: wherever its remembered refusal answers for a
    newcomer, a fresh scan of the table (its connections, oldest first, and whether the
    newcomer's network is spent) gives no victim either."""
    known, was_spent = Refusals.known, ShieldSpends.spent
    seen: dict[str, Any] = {}

    def recorded(self: ShieldSpends, network: str, now: float) -> bool:
        seen["spent"] = answer = was_spent(self, network, now)
        return answer

    async def test() -> None:
        loop = asyncio.get_running_loop()
        clock = [1000.0]
        loop.time = lambda: clock[0]  # type: ignore[method-assign]
        transport = TcpTransport(
            Router(), TcpSettings(max_connections=4, max_connections_per_source=2),
            authenticated_idle=True,
        )  # fmt: skip
        table: list[tuple[TcpConnection, _Socket]] = []  # accepted, oldest first

        def checked(
            self: Refusals, counts: tuple[int, int], now: float, spent: bool = False
        ) -> bool:
            answer = known(self, counts, now, spent)
            if answer:
                newcomer = seen["newcomer"]
                held = [connection for connection, _socket in table]
                victim = eviction_candidate(
                    held, newcomer, collections.Counter(c.host for c in held),
                    collections.Counter(c.network for c in held), strict=True,
                    evict_idle_after=transport.settings.evict_idle_after,
                    shielded_for=transport.settings.first_frame_timeout, spent=seen["spent"],
                )  # fmt: skip
                assert victim is None
            return answer

        Refusals.known = checked  # type: ignore[method-assign]
        ShieldSpends.spent = recorded  # type: ignore[method-assign]
        try:
            for op, network, address, passing, which in ops:
                clock[0] += passing
                if op == "arrive":
                    socket = _Socket(f"198.51.{network}.{address + 1}")
                    connection = TcpConnection(
                        transport, outgoing=False, listener=Listener(), peer="?"
                    )
                    seen["newcomer"] = connection
                    connection.connection_made(socket)
                    if not socket.aborted:
                        table.append((connection, socket))
                elif table and op == "progress":
                    table[which % len(table)][0].progressed()
                elif table:
                    connection, socket = table[which % len(table)]
                    socket.aborted = True
                    connection.connection_lost(None)
                table[:] = [(c, s) for c, s in table if not s.aborted]
        finally:
            Refusals.known = known  # type: ignore[method-assign]
            ShieldSpends.spent = was_spent  # type: ignore[method-assign]
        _stop(transport)

    asyncio.run(test())


@pytest.mark.parametrize("later", [0.0, 11.0])
def test_a_connection_accepted_after_a_refusal_gives_way_as_a_scan_finds(later: float) -> None:
    """A cap of 6 held by members (progress made) of five /24s, 192.0.0.0/24 holding two; a
    newcomer of 192.0.1.0/24 is refused (remembered). A member closes and a client of
    198.51.101.0/24 gets in (the table full again). A newcomer of 192.0.2.0/24 (holding one, as
    the client's network) takes the client's connection mid-handshake, and `later` (past its
    shield) one of 192.0.0.0/24 (holding two) does: the refusal remembered before does not
    refuse either."""

    async def test() -> None:
        loop = asyncio.get_running_loop()
        clock = [1000.0]
        loop.time = lambda: clock[0]  # type: ignore[method-assign]
        transport = TcpTransport(Router(), TcpSettings(max_connections=6), authenticated_idle=True)
        members = []
        for peer in ("192.0.0.1", "192.0.0.2", "192.0.1.1", "192.0.2.1", "192.0.3.1", "192.0.4.1"):
            member, _socket = _accept(transport, peer)
            member.progressed()
            members.append(member)
        _newcomer, refused = _accept(transport, "192.0.1.2")
        assert refused.aborted
        members[4].connection_lost(None)
        _client, client = _accept(transport, "198.51.101.1")
        assert not client.aborted
        clock[0] += later
        _newcomer, socket = _accept(transport, "192.0.0.3" if later else "192.0.2.2")
        assert not socket.aborted
        assert client.aborted
        _stop(transport)

    asyncio.run(test())
