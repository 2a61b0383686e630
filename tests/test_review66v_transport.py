"""Review 66v, transport: per-source limits end to end (issue #8).

Transport 1 ("TCP eviction by a fast stranger", left since review 64e): at the connection cap a
newcomer evicted, before anything else, a connection that had made no progress yet (at a node,
a genuine client's until its message 3 verifies; `troth.transport.eviction`), of whatever
network. An attacker from one /24 (or one address, under a lower cap) held the cap with
connections whose handshakes it finished at once (a stranger's identity costs nothing, so its
connections had made progress); a client from another network got in (the attacker's network
held the most and gave way), and the attacker's next connection, opened within the client's
handshake round trip, evicted the client's, the only one without progress: no client finished
its handshake while the attacker went on. A connection without progress now gives way only to
a newcomer whose network holds no more connections than its own (as review 62f, listener 2, did
for the per-address share); the attacker's newcomers are refused, and the refusal is remembered
for its later newcomers (no table scan each).
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
from troth.transport.eviction import Refusals, eviction_candidate
from troth.transport.frameless import Frameless
from troth.transport.tcp import TcpConnection


def _accept(transport: TcpTransport, peer: str) -> tuple[TcpConnection, _Socket]:
    socket = _Socket(peer)
    connection = TcpConnection(transport, outgoing=False, listener=Listener(), peer="?")
    connection.connection_made(socket)
    return connection, socket


def test_a_fast_strangers_new_connections_do_not_evict_a_client_mid_handshake(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A node's cap at 8: an attacker holds it from 8 addresses of 192.0.2.0/24, each having
    finished a stranger's handshake (progress); a client from 198.51.100.0/24 gets in (one of
    the attacker's gives way) and has not sent its message 3 yet. 50 more connections from new
    addresses of the attacker's /24 are each refused, the client's stays, and the table is
    scanned at most twice for them (the refusal is remembered)."""
    scans = 0
    weigh = eviction_module.eviction_candidate

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal scans
        scans += 1
        return weigh(*args, **kwargs)

    async def test() -> None:
        nonlocal scans
        transport = TcpTransport(Router(), TcpSettings(max_connections=8), authenticated_idle=True)
        opened = [_accept(transport, f"192.0.2.{n}") for n in range(1, 9)]
        for connection, _socket in opened:
            connection.progressed()  # its stranger's message 3 verified
        client, client_socket = _accept(transport, "198.51.100.7")
        assert not client_socket.aborted
        assert transport.counters.evicted == 1
        monkeypatch.setattr("troth.transport.tcp.eviction_candidate", counted)
        scans = 0
        for n in range(10, 60):
            opened.append(_accept(transport, f"192.0.2.{n}"))
        assert not client_socket.aborted
        assert client in transport.connections()
        assert transport.counters.evicted == 1
        assert transport.counters.refused_over_limit == 50
        assert scans <= 2
        for connection in transport.connections():
            if connection._consumer is not None:
                connection._consumer.cancel()

    asyncio.run(test())


def test_junk_from_a_small_network_is_shielded_only_for_a_handshakes_time() -> None:
    """The shield of transport 1 is not one for junk: a NAT's address of 198.51.100.0/24 holds 6
    active connections of a cap of 8, and 2 connections from 192.0.2.0/24 brought junk only (no
    progress). A newcomer from the NAT within `shielded_for` (10 s) of their opening is refused
    (they may be clients mid-handshake), and that refusal is remembered only until then; past
    it, one of the junk connections gives way to it."""
    nat = [_Held("198.51.100.7", "198.51.100.0/24") for _ in range(6)]
    junk = [_Held(f"192.0.2.{n}", "192.0.2.0/24", progress=0) for n in (1, 2)]
    table = nat + junk
    for connection in table:
        connection.liveness.opened(0.0)
    per_host = collections.Counter(c.host for c in table)
    per_network = collections.Counter(c.network for c in table)
    refusals = Refusals()

    def weigh(now: float) -> _Held | None:
        for connection in nat:
            connection.liveness.last_active = now  # (their keepalives)
        newcomer = _Held("198.51.100.7", "198.51.100.0/24", progress=0)
        newcomer.liveness.opened(now)
        return eviction_candidate(
            table, newcomer, per_host, per_network, strict=True, evict_idle_after=60.0,
            refusals=refusals, shielded_for=10.0,
        )  # fmt: skip

    assert weigh(5.0) is None
    assert refusals.known((6, 6), 9.0)
    assert not refusals.known((6, 6), 10.0)
    assert weigh(10.0) in junk


def test_a_newcomers_own_networks_frameless_connection_gives_way_not_a_shielded_one() -> None:
    """With two clients of 198.51.100.0/24 mid-handshake (the network holding the most
    frameless connections, shielded), 5 active connections and one frameless of 192.0.2.0/24,
    a newcomer of 192.0.2.0/24 evicts its own network's frameless one, found alike by the
    transport's index of frameless connections and by a scan of the table."""
    clients = [_Held(f"198.51.100.{n}", "198.51.100.0/24", progress=0) for n in (7, 8)]
    active = [_Held(f"192.0.2.{n}", "192.0.2.0/24") for n in range(1, 6)]
    waiting = _Held("192.0.2.9", "192.0.2.0/24", progress=0)
    table = [*clients, *active, waiting]
    index: Frameless[_Held] = Frameless()
    for connection in table:
        connection.liveness.opened(0.0)
        if not connection.progress:
            index.add(connection, connection.host)
    newcomer = _Held("192.0.2.10", "192.0.2.0/24", progress=0)
    newcomer.liveness.opened(1.0)
    per_host = collections.Counter(c.host for c in table)
    per_network = collections.Counter(c.network for c in table)
    for unproven in (None, index):
        victim = eviction_candidate(
            table, newcomer, per_host, per_network, strict=True, evict_idle_after=60.0,
            unproven=unproven, shielded_for=10.0,
        )  # fmt: skip
        assert victim is waiting
