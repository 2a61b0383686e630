"""Review 62f, transport: the TCP transport and listener under hostile sources (issue #8).

Buffers 1: a connection's read buffer is given back at the sweep (`FrameReader.settle`) only
when what it holds fits the small buffer (`shrink` refused when more than `small_read_buffer`
bytes wait). A peer that sent one burst (its buffer grown to `large_read_buffer`, 512 KiB, its
pages written) and then, before each sweep, the start of a frame of a little over 16 KiB
(completed after the sweep, within `frame_timeout`, and the next one started) kept the whole
large buffer for as long as it went on: ~20 KiB a sweep interval (~8 KB/s) held 512 KiB, where
review 53g's bound says twice what came in a sweep interval. 64 connections from one address
held 32 MiB, the connection cap 512 MiB. A buffer holding more than the small one is now given
back to what it holds (the partial frame), not kept whole.

Listener 1: at the connection cap, a newcomer evicts, of the connections that brought no frame
yet (at a node: made no progress yet, which a genuine client's connection is until its message
3 verifies), the oldest of the source address holding the most (`Frameless.victim`), its
network not weighed. Sources holding one each tie, so an attacker opening connections from the
addresses of one /24 (an IPv6 /48's /64s: 65,536 sources) evicted its own oldest, and the
genuine client's connection once it was the oldest: a cap's worth of connections within a
handshake's round trip kept every newcomer out. The network holding the most of them now gives
way first (as between connections that brought one: review 48h, sources 1).

Listener 2: with no frameless connection, the per-address fair share (an address holding at
least two more than the newcomer's gives way) came before networks were weighed, so newcomers
from fresh /64s of the /48 holding the most took another network's NAT's connections; it now
takes only from addresses whose network holds no fewer than the newcomer's. Listener 3 (of
that fix): the remembered refusal (review 60f) did not answer for the newcomers it now
refuses, and each scanned the table; it remembers that share's most too.

Sources 1: below (the RFC 8215 local-use NAT64 prefix).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import sys
from pathlib import Path

import pytest

from tests.support.hostile_tcp import accepted, hostile_hub, raw, tcp_of
from tests.support.load import Stranger, attacker_addresses
from tests.test_review57c_transport import _At
from tests.test_review60f_listener import _refused_at_the_cap
from tests.test_review60f_refuted import _Held
from tests.test_review62f_refuted import _Socket
from tests.test_transport_tcp import Server, answer, run, until
from troth.routing import Router
from troth.transport import Listener, TcpSettings, TcpTransport
from troth.transport.connection import source_host, source_network
from troth.transport.eviction import eviction_candidate
from troth.transport.frameless import Frameless
from troth.transport.framing import FRAME_HEADER, FRAME_VERSION, LARGE_BUFFER, FrameReader, frame
from troth.transport.tcp import TcpConnection

PARTIAL = 17 * 1024  # what waits in the buffer at each sweep: just over the small buffer
BODY = 20 * 1024  # the frame it belongs to (completed after the sweep)


def test_a_partial_frame_just_over_the_small_buffer_does_not_keep_a_large_one() -> None:
    reader = FrameReader()
    assert len(reader.feed(frame(bytes(120_000)) * 5, 0.0)) == 5  # a burst: grown to large
    assert reader.capacity == LARGE_BUFFER
    reader.settle()
    rest = b""
    for sweep in range(1, 5):  # before each sweep: the last frame's rest, the next one's start
        sent = rest + FRAME_HEADER.pack(FRAME_VERSION, BODY) + bytes(PARTIAL)
        assert reader.feed(sent, float(sweep)) == ([bytes(BODY)] if rest else [])
        rest = bytes(BODY - PARTIAL)
        reader.settle()
        assert reader.buffered > reader.small
        assert reader.capacity <= 2 * len(sent)  # at most twice what came in a sweep interval


@pytest.mark.usefixtures("loopback_sources")  # its clients stand for remote hosts
def test_connections_from_one_network_do_not_evict_a_newcomer_before_its_first_frame() -> None:
    """The cap at 4: three connections from addresses of 127.0.5.0/24, then a genuine client
    from another network, accepted, its first frame not yet sent (its handshake under way);
    four more from new addresses of that /24 give up their own network's, not the client's."""

    async def test(server: Server) -> None:
        counters = server.transport.counters
        attackers = [await server.client(f"127.0.5.{n}") for n in range(1, 4)]
        client = await server.client("127.0.9.1")
        await until(lambda: counters.accepted == 4)
        for n in range(4, 8):
            attackers.append(await server.client(f"127.0.5.{n}"))
            await until(lambda n=n: counters.accepted + counters.refused_over_limit == n + 1)  # type: ignore[misc]
        assert counters.evicted == 4
        assert await asyncio.wait_for(answer(client), 2) == b"ping"
        for _reader, writer in attackers:
            writer.close()

    run(test, TcpSettings(max_connections=4))


def test_the_64s_of_one_48_evict_their_own_frameless_connections_not_a_newcomers() -> None:
    """Listener 1 with IPv6: a cap of 64 held by frameless connections from 63 /64s of one /48
    (each a source of its own, one connection each) and a client from another /48 among them;
    each of 200 more from new /64s of that /48 is weighed (the index, as the transport keeps
    it, and the whole table scanned alike): the attacker's own give way, the client stays."""
    table: dict[_Held, None] = {}
    index: Frameless[_Held] = Frameless()

    def accept(address: str) -> _Held:
        host = source_host(address)
        connection = _Held(host, source_network(host), progress=0, frames_read=0)
        table[connection] = None
        index.add(connection, host)
        return connection

    for n in range(32):
        accept(f"2001:db8:5:{n:x}::1")
    client = accept("2001:db8:9:1::1")
    for n in range(32, 63):
        accept(f"2001:db8:5:{n:x}::1")
    for n in range(63, 263):
        newcomer = _Held(source_host(f"2001:db8:5:{n:x}::1"), "", progress=0, frames_read=0)
        newcomer.network = source_network(newcomer.host)
        per_host = collections.Counter(c.host for c in table)
        per_network = collections.Counter(c.network for c in table)
        weigh = functools.partial(
            eviction_candidate, list(table), newcomer, per_host, per_network, strict=True,
            evict_idle_after=60.0,
        )  # fmt: skip
        scanned, victim = weigh(), weigh(unproven=index)
        assert victim is scanned
        assert victim is not None
        assert victim is not client
        del table[victim]
        index.discard(victim)
        accept(f"2001:db8:5:{n:x}::1")
    assert client in table


def test_ipv4_clients_through_a_local_use_translator_are_sources_of_their_own() -> None:
    """Sources 1: review 29b (sources 3) counted a peer in the NAT64 well-known prefix
    (`64:ff9b::/96`) as its IPv4 address, but not one in the local-use prefix RFC 8215 sets
    apart for translators an operator runs (`64:ff9b:1::/48`, e.g. `64:ff9b:1::/96`): every
    IPv4 client of a node behind such a translator was one source (one /64), so one of them
    holding 64 connections refused every other IPv4 client. Now its last 32 bits are its IPv4
    address there too (the /96 of RFC 6052 a translator takes). With the per-source cap at 1, the
    second of two IPv4 clients through it is admitted, and their networks are their /24s."""
    first, second = "64:ff9b:1::c000:207", "64:ff9b:1::c633:6407"  # 192.0.2.7, 198.51.100.7
    assert source_host(first) == "192.0.2.7"
    assert source_host(second) == "198.51.100.7"
    assert source_network(source_host(second)) == "198.51.100.0/24"

    async def test() -> None:
        transport = TcpTransport(Router(), TcpSettings(max_connections_per_source=1))
        for peer in (first, second):
            connection = TcpConnection(transport, outgoing=False, listener=Listener(), peer="?")
            connection.connection_made(_Socket(peer))
        assert transport.counters.refused_per_source == 0
        assert len(transport.connections()) == 2
        for connection in transport.connections():
            if connection._consumer is not None:
                connection._consumer.cancel()

    asyncio.run(test())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs 127/8")
@pytest.mark.usefixtures("loopback_sources")  # its clients stand for remote hosts
def test_at_a_node_one_networks_connections_do_not_evict_a_client_before_its_handshake(
    tmp_path: Path,
) -> None:
    """Listener 1 at a node (progress is authenticated: a client's connection is frameless
    until its message 3 verifies), its cap at 8: seven connections from 127.0.5.0/24, then a
    stranger's connection, then eight more from new addresses of that /24 before the stranger
    sends its message 1. The stranger's connection stays (before, it was evicted, and its
    handshake failed: a retry in a storm that goes on meets the same): it opens its channel
    over it and its request is answered."""

    async def main() -> None:
        async with hostile_hub(tmp_path, TcpSettings(max_connections=8)) as hub:
            assert hub.listening is not None
            host, port = hub.listening
            counters = tcp_of(hub).counters
            router = Router()
            client = TcpTransport(router, TcpSettings())
            stranger = Stranger(router)
            sockets = [raw(hub, f"127.0.5.{n}") for n in range(1, 8)]
            try:
                await until(lambda: counters.accepted == 7)
                connection = await client.connect(host, port)
                await until(lambda: counters.accepted == 8)
                for n in range(8, 16):
                    sockets.append(raw(hub, f"127.0.5.{n}"))
                    await until(lambda n=n: counters.accepted == n + 1)  # type: ignore[misc]
                assert counters.evicted == 8
                assert [c.host for c in accepted(hub)].count("127.0.0.1") == 1  # (not evicted)
                end = await asyncio.wait_for(stranger.open(_At(hub.listening)), 5)  # type: ignore[arg-type]
                assert await stranger.still_open(end)
                assert await client.connect(host, port) is connection  # (no new one needed)
            finally:
                for sock in sockets:
                    sock.close()
                await stranger.manager.close_all()
                await client.close()

    asyncio.run(main())


def test_one_networks_newcomers_do_not_take_a_small_networks_connections() -> None:
    """Listener 2: at the cap, with no frameless connection, a newcomer takes the idlest
    connection of the address holding at least two more than its own, before networks are
    weighed. A cap of 16: a client address of another network holds 3 active connections (a
    NAT's agents), an attacker holds the other 13 from 13 /64s of one /48 (handshakes done:
    identities cost nothing), and opens more from fresh /64s of it: each takes one of the
    client's (its address holds 3 >= 0 + 2), though the attacker's network holds the most,
    until the client holds one; each client connection that gets back in (over the network
    rule) is taken again by the attacker's next. The address rule now gives way only where the
    address's network holds no fewer than the newcomer's."""
    client = [_Held("192.0.2.7", "192.0.2.0/24") for _ in range(3)]
    attacker = [_Held(source_host(f"2001:db8:5:{n:x}::1"), "2001:db8:5::/48") for n in range(13)]
    table = client + attacker
    for connection in table:
        connection.liveness.opened(0.0)
        connection.liveness.last_active = 10.0  # all active (their keepalives)
    newcomer = _Held(source_host("2001:db8:5:ff::1"), "2001:db8:5::/48", progress=0)
    newcomer.liveness.opened(20.0)
    victim = eviction_candidate(
        table,
        newcomer,
        collections.Counter(c.host for c in table),
        collections.Counter(c.network for c in table),
        strict=True,
        evict_idle_after=60.0,
    )
    assert victim not in client


def test_newcomers_refused_by_the_fair_share_do_not_each_scan_the_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Listener 3 (of the fix of listener 2): a cap of 32 held by active connections, 3 from
    one address of 127.0.64.0/24 (a NAT's agents) and 29 from as many addresses of
    127.0.65.0/24; 40 newcomers from fresh addresses of that /24 are each refused now (the
    NAT's network holds fewer than theirs), and the remembered refusal (review 60f, listener
    1) must still answer for them: the connections weighed are a scan or two of the table,
    not one scan each (the address holding 3 is at least two more than theirs)."""
    held = ["127.0.64.7"] * 3 + attacker_addresses(29, subnet=65)
    newcomers = [f"127.0.65.{200 + n}" for n in range(40)]
    _refused_at_the_cap(monkeypatch, held, newcomers)
