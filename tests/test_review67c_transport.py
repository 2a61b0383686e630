"""Review 67c, transport: the shield of review 66v, transport 1, against a newcomer from a
network holding no connection (issue #8).

Transport 1 ("one address evicts every client mid-handshake"). At a full
table, a connection without progress opened less than `first_frame_timeout` ago gives way only
to a newcomer whose network holds no more connections than its own. A network holding none
holds no more than any, so its newcomer evicts whichever connection mid-handshake the rule
ranks first. One address is enough to do it over and over: its junk connection, once in, is
evicted by the next honest newcomer (its network holds one, no fewer than the newcomer's), so
the attacker's network holds none again and its next connection, a few milliseconds after each
honest one, evicts that one before its message 3 (a handshake takes a round trip or more; the
attacker's connect costs one SYN). No client that got in mid-handshake finishes while it goes
on. Now a network's newcomers evict another network's shielded connection at most once per
shield (`first_frame_timeout`; `troth.transport.eviction.ShieldSpends`), so one address kills at
most one handshake each 10 s; after that only its own network's connections mid-handshake,
those past their shield and the fair shares give way to it. The remembered refusal
(`Refusals`) answers for a spent network's newcomers (no table scan each) and, for the others,
only where their network holds more than any kept connection's (it held the scanned newcomer's
count before, which a spent newcomer's refusal does not bound).
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import pytest

from tests.test_review60f_refuted import _Held
from tests.test_review62f_refuted import _Socket
from troth.routing import Router
from troth.transport import Listener, TcpSettings, TcpTransport
from troth.transport import eviction as eviction_module
from troth.transport.eviction import Refusals, ShieldSpends, eviction_candidate
from troth.transport.frameless import Frameless
from troth.transport.tcp import TcpConnection

SHIELD = 10.0


def _accept(transport: TcpTransport, peer: str) -> tuple[TcpConnection, _Socket]:
    socket = _Socket(peer)
    connection = TcpConnection(transport, outgoing=False, listener=Listener(), peer="?")
    connection.connection_made(socket)
    return connection, socket


def _stop(transport: TcpTransport) -> None:
    for connection in transport.connections():
        if connection._consumer is not None:
            connection._consumer.cancel()


def test_one_address_does_not_evict_every_client_mid_handshake(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A node's cap at 8, held by 7 members from 7 /24s (progress made) and a client from
    198.51.100.0/24 mid-handshake; one attacker address (203.0.113.9) opens a connection after
    each of ten more clients from ten other /24s (each of which gets in: the attacker's
    junk, or the client before it, gives way). The attacker evicts one client mid-handshake,
    no more, within the shield; its later connections are refused, weighed with at most one
    table scan per client that came between."""
    scans = 0
    weigh = eviction_module.eviction_candidate

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal scans
        scans += 1
        return weigh(*args, **kwargs)

    async def test() -> None:
        transport = TcpTransport(Router(), TcpSettings(max_connections=8), authenticated_idle=True)
        for n in range(7):
            member, _socket = _accept(transport, f"192.0.{n}.1")
            member.progressed()
        clients = [_accept(transport, "198.51.100.7")]
        monkeypatch.setattr("troth.transport.tcp.eviction_candidate", counted)
        killed = 0
        for n in range(10):
            alive = [socket for _client, socket in clients if not socket.aborted]
            for _ in range(5):
                _accept(transport, "203.0.113.9")
            killed += sum(socket.aborted for socket in alive)
            clients.append(_accept(transport, f"198.51.{n}.7"))
        assert killed == 1
        assert transport.counters.refused_over_limit == 45  # (its first 5 churn its own)
        assert scans <= 5 + 10 + 9  # its first 5, each client, its first after each (not 50;
        # fewer since a connection coming or going no longer forgets the refusal: review 67p,
        # transport 2)
        _stop(transport)

    asyncio.run(test())


def test_a_spent_network_still_evicts_its_own_connection_mid_handshake() -> None:
    """After its newcomer evicted another network's client mid-handshake, a network's next
    newcomers take its own connections mid-handshake (a flood churns its own), not the
    others'."""

    async def test() -> None:
        transport = TcpTransport(Router(), TcpSettings(max_connections=8), authenticated_idle=True)
        for n in range(6):
            member, _socket = _accept(transport, f"192.0.{n}.1")
            member.progressed()
        _client, client_socket = _accept(transport, "198.51.100.7")
        _other, other_socket = _accept(transport, "198.51.101.7")
        _first, first_socket = _accept(transport, "203.0.113.9")  # evicts a client
        assert client_socket.aborted != other_socket.aborted
        survivor = other_socket if client_socket.aborted else client_socket
        _second, second_socket = _accept(transport, "203.0.113.10")
        assert first_socket.aborted
        assert not second_socket.aborted
        assert not survivor.aborted
        assert transport.counters.evicted == 2
        _stop(transport)

    asyncio.run(test())


def test_the_spends_are_bounded_and_end_with_the_shield() -> None:
    """A network is spent for one shield; with `kept` networks spent, every network counts as
    spent until the oldest's shield ends (none forgotten early: an attacker's spend pushed out
    by honest newcomers' evicted again), and no more are kept."""
    spends = ShieldSpends(10.0, kept=4)
    spends.spend("a", 0.0)
    assert spends.spent("a", 9.9)
    assert not spends.spent("a", 10.0)
    assert not spends.spent("b", 10.0)
    for n in range(100):
        if not spends.spent(f"n{n}", 11.0 + n / 1000):
            spends.spend(f"n{n}", 11.0 + n / 1000)
    assert len(spends) == 4
    assert spends.spent("n0", 12.0)
    assert spends.spent("fresh", 12.0)
    assert not spends.spent("fresh", 21.0)
    assert len(spends) == 3


def test_a_spent_networks_refusal_does_not_refuse_another_networks_newcomer() -> None:
    """A cap of 8: 198.51.100.0/24 holds 2 members and a client mid-handshake, the attacker's
    /24 2 members, 203.0.114.0/24 2, 192.0.2.0/24 1. The attacker's network spent its shielded
    eviction: its newcomer is refused, remembered. A newcomer from 203.0.114.0/24 (holding 2,
    fewer than the client's network) is not refused by that memory: the client's connection
    gives way to it, as a scan finds."""
    table: list[_Held] = []
    for host, network in (
        ("198.51.100.1", "198.51.100.0/24"), ("198.51.100.2", "198.51.100.0/24"),
        ("203.0.113.1", "203.0.113.0/24"), ("203.0.113.2", "203.0.113.0/24"),
        ("203.0.114.1", "203.0.114.0/24"), ("203.0.114.2", "203.0.114.0/24"),
        ("192.0.2.1", "192.0.2.0/24"),
    ):  # fmt: skip
        member = _Held(host, network)
        member.liveness.opened(0.0)
        member.liveness.last_active = 29.0
        table.append(member)
    client = _Held("198.51.100.3", "198.51.100.0/24", progress=0, frames_read=0)
    client.liveness.opened(29.5)
    table.append(client)
    index: Frameless[_Held] = Frameless()
    index.add(client, client.host)
    refusals = Refusals()
    per_host = collections.Counter(c.host for c in table)
    per_network = collections.Counter(c.network for c in table)

    def weigh(host: str, network: str, spent: bool) -> _Held | str | None:
        newcomer = _Held(host, network, progress=0, frames_read=0)
        newcomer.liveness.opened(30.0)
        counts = (per_host[host], per_network[network])
        if refusals.known(counts, 30.0, spent and not index.holds(network)):
            return "known"
        return eviction_candidate(
            table, newcomer, per_host, per_network, strict=True, evict_idle_after=60.0,
            refusals=refusals, unproven=index, shielded_for=SHIELD, spent=spent,
        )  # fmt: skip

    assert weigh("203.0.113.9", "203.0.113.0/24", spent=True) is None
    assert weigh("203.0.113.8", "203.0.113.0/24", spent=True) == "known"
    assert weigh("203.0.114.9", "203.0.114.0/24", spent=False) is client
