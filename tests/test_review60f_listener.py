"""Review 60f: the listener and the TCP transport under hostile load (issue #8, item 5).

Listener 1: at the connection cap, every new connection was weighed against every accepted one
(`eviction_candidate`: the frameless ones, the fair shares by address and by network, the
idlest), also when none could give way and the newcomer was refused: ~0.4 ms of the event
loop's time a connection at 1,024, measured here. Refused connections are not counted, so one
address (never at its per-source cap) made the node scan its whole table for each connection
it opened, ~2,500 a second taking a core; and a newcomer evicting the frameless connection
before it (one address churning one place) scanned it for each too. A scan that finds no
connection to give way is now remembered (`troth.transport.eviction.Refusals`) until the table
changes, the sweep sees progress, or the idlest connection could be idle long enough to give
way; and the frameless connections are kept apart (`TcpTransport._unproven`), so a newcomer is
weighed against them alone while there are any.

Listener 2: the handshake budgets of the networks and sources messages 1 come from
(`OpeningRates`, 4,096 of each kept) forget, when full, the refilled ones first, then the
oldest: found by a scan of the whole table, and nothing is refilled within the second it was
taken from. Messages 1 from new networks past 4,096 in one second (one IPv6 /36 holds 4,096
/48s) each made the node scan both tables, ~2 ms a message 1 (five times a responder's whole
handshake work, before any is done). A full table now makes room for a quarter of it at once
(refilled ones first, then the oldest), so its scan is paid once for 1,024 newcomers.

Listener 3: the transport's rate-limited log (`RateLimitedLog`, 10 lines a minute) counted the
lines its logger does not write: in a process logging at WARNING (Python's default, a program
that embeds troth), a peer's junk frames — each dropped with an INFO line the logger discards —
took the minute's lines, and the warnings about refused, evicted and stalled connections were
only counted, their tally ("and N similar lines left out") put on the next INFO line, never
written either. A line the logger would not write now costs none of the limit.

Listener 4: at the node's cap on open channels (`troth.node.channel_cap`), a stranger's new
channel takes the place of one of the network holding the most strangers' channels, of its
source holding the most, picked by a scan of that network's sources (and of the networks): one
IPv6 /48 holding the strangers' 3,072 places from as many /64s made each of its new channels
scan 3,072 sources, ~2 ms of the event loop (as much as the handshake). The groups holding the
most are now kept ranked (`troth.ranked.Ranked`), the victim found without a scan.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from tests.support.load import attacker_addresses
from tests.test_transport_tcp import Server, Streams, answer, run, until
from troth import limits
from troth.node.channel_cap import OpenChannels
from troth.node.opening_rates import OpeningRates
from troth.rates import ByteBudgets
from troth.routing import Address, RoutedMessage
from troth.transport import TcpSettings, eviction, frame, tcp

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs 127/8")

HELD = 32  # the connection cap in the test
NEWCOMERS = 40


def count_pruned(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the handshake budgets looked at to make room in their tables (`prune`'s scans)."""
    looked = [0]
    prune = ByteBudgets.prune

    def counted(self: ByteBudgets, *, now: int) -> None:
        looked[0] += len(self)
        prune(self, now=now)

    monkeypatch.setattr(ByteBudgets, "prune", counted)
    return looked


async def _hold(server: Server, sources: list[str]) -> list[Streams]:
    """A connection from each of `sources`, each answered once (active, not frameless)."""
    holders = [await server.client(a) for a in sources]
    for streams in holders:
        assert await answer(streams) == b"ping"
    return holders


def _close(connections: list[Streams]) -> None:
    for _, writer in connections:
        writer.close()


def _count_weighed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the accepted connections the transport weighs for newcomers at its cap (each one
    `eviction_candidate` takes from the table, or from its frameless ones)."""
    weighed = [0]
    scan = eviction.eviction_candidate

    def counting(connections: Iterable[Any]) -> Iterator[Any]:
        for connection in connections:
            weighed[0] += 1
            yield connection

    def counted(accepted: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        return scan(counting(accepted), *args, **kwargs)

    monkeypatch.setattr(tcp, "eviction_candidate", counted)
    return weighed


def test_refused_newcomers_at_the_cap_do_not_each_scan_the_connection_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Listener 1: a cap of 32 held by 32 active connections, one from each of 32 addresses of
    one /24 (none gives way: no frameless one, no fair share passed, none idle 60 s); one more
    address of that /24 opens 40 connections, each refused. The connections the transport
    weighed for them are at most a scan or two of the table, not one scan each (1,280)."""
    _refused_at_the_cap(
        monkeypatch, attacker_addresses(HELD, subnet=61), ["127.0.61.200"] * NEWCOMERS
    )


def _refused_at_the_cap(
    monkeypatch: pytest.MonkeyPatch, held: list[str], newcomers: list[str]
) -> None:
    """The cap (HELD) held by active connections from `held`, then a connection from each of
    `newcomers`: each is refused, the connections weighed for them a scan or two of the
    table in all."""
    weighed = _count_weighed(monkeypatch)

    async def test(server: Server) -> None:
        counters = server.transport.counters
        holders = await _hold(server, held)
        opened = [await server.client(source) for source in newcomers]
        await until(lambda: counters.refused_over_limit == len(newcomers))
        assert counters.evicted == 0
        assert weighed[0] <= 3 * HELD, f"{weighed[0]} connections weighed for {len(newcomers)}"
        _close(holders + opened)

    run(test, TcpSettings(max_connections=HELD))


def test_messages_1_from_new_networks_past_the_tables_do_not_each_scan_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Listener 2: within one second of the loop's clock, messages 1 from 4,096 + 512 sources
    of as many networks: each is taken up (a newcomer is never refused for want of a slot), and
    the buckets looked at to make room are a scan or two of each table, not two full tables'
    for each of the 512 (~4 million)."""
    looked = count_pruned(monkeypatch)
    tables = limits.MAX_HANDSHAKE_NETWORKS + limits.MAX_HANDSHAKE_SOURCES

    async def main() -> None:
        monkeypatch.setattr(asyncio.get_running_loop(), "time", lambda: 1000.0)
        rates = OpeningRates(rate=limits.HANDSHAKE_RATE, burst=limits.HANDSHAKE_BURST)
        for n in range(limits.MAX_HANDSHAKE_NETWORKS + 512):
            assert rates.take(f"tcp 2001:db8:{n:x}::/64", f"tcp 2001:db8:{n:x}::/48")

    asyncio.run(main())
    assert looked[0] <= 2 * tables, f"{looked[0]} buckets looked at"


def test_newcomers_churning_a_frameless_place_do_not_each_scan_the_connection_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Listener 1, its other half: a cap of 32, 31 held by active connections of one /24; one
    more address of it opens 40 connections that send nothing, each evicting the one before
    (frameless). Weighing each newcomer takes the frameless connections, not the whole table."""
    weighed = _count_weighed(monkeypatch)

    async def test(server: Server) -> None:
        counters = server.transport.counters
        holders = await _hold(server, attacker_addresses(HELD - 1, subnet=62))
        newcomers = [await server.client("127.0.62.200") for _ in range(NEWCOMERS + 1)]
        await until(lambda: counters.evicted == NEWCOMERS)
        assert counters.refused_over_limit == 0
        assert weighed[0] <= 3 * HELD + 2 * NEWCOMERS, f"{weighed[0]} connections weighed"
        _close(holders + newcomers)

    run(test, TcpSettings(max_connections=HELD))


def test_refused_newcomers_from_addresses_holding_different_counts_do_not_each_scan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Listener 1, remembered for any newcomer: the cap of 32 held as in the first test, one of
    the 32 from the attacker's own address; its 40 newcomers alternate between that address
    (holding one) and another (holding none). Each is refused, after a scan or two in all."""
    held = [*attacker_addresses(HELD - 1, subnet=63), "127.0.63.100"]
    alternating = ["127.0.63.100" if n % 2 else "127.0.63.200" for n in range(NEWCOMERS)]
    _refused_at_the_cap(monkeypatch, held, alternating)


@pytest.mark.usefixtures("loopback_sources")  # its clients stand for remote hosts
def test_junk_frames_do_not_silence_the_transports_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Listener 3: the transport's logger at WARNING; a peer sends 12 frames to an address it may
    not reach (each dropped, its INFO line not written), then opens two connections from an
    address allowed one: the refusal is written."""

    async def test(server: Server) -> None:
        counters = server.transport.counters
        reader, writer = await server.client("127.0.64.1")
        junk = frame(RoutedMessage((Address("service", "nowhere"),), (), b"x").encode())
        writer.write(junk * 12)
        await until(lambda: counters.dropped_messages == 12)
        first = await server.client("127.0.64.2")
        second = await server.client("127.0.64.2")
        await until(lambda: counters.refused_per_source == 1)
        for _, opened in ((reader, writer), first, second):
            opened.close()

    caplog.set_level(logging.WARNING, logger="troth.transport.tcp")
    run(test, TcpSettings(max_connections_per_source=1))
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert refusals, [r.getMessage() for r in caplog.records]


class _CountedLookups(dict[Any, Any]):
    """A channel table that counts the channels looked up in it."""

    looked = 0

    def __getitem__(self, key: Any) -> Any:
        self.looked += 1
        return super().__getitem__(key)


def test_a_new_strangers_channel_at_the_cap_does_not_scan_every_source() -> None:
    """Listener 4: a cap of 4,096, strangers' 3,072 places held from 3,072 /64s of one /48; 50
    more strangers' channels from new /64s of it each take one of their places. The channels
    looked up to choose them are a few each, not the 3,072 sources' oldest each."""
    cap: OpenChannels[int] = OpenChannels(4096)
    network = "tcp 2001:db8::/48"
    for n in range(cap.strangers_bound):
        cap.add(n, stranger=True, source=f"tcp 2001:db8:0:{n:x}::/64", network=network)
    table = _CountedLookups(cap._held)
    cap._held = table
    for n in range(50):
        source = f"tcp 2001:db8:1:{n:x}::/64"
        place = cap.place(stranger=True, source=source, network=network)
        assert place.admitted
        assert place.victim == n  # the oldest, as before
        cap.discard(place.victim)
        cap.add(10_000 + n, stranger=True, source=source, network=network)
    assert table.looked <= 50 * 8, f"{table.looked} channels looked up for 50"
