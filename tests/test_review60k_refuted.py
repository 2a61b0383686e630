"""Review 60k: attacks on the fix of review 60i, listener 2 (the frameless connections kept by
source address, `troth.transport.frameless.Frameless`, each taken out as its connection first
makes progress, `TcpTransport.proved`) that did NOT work (each test fails if the defence it
exercises breaks): the victim differs from the scan's under churn; a frame (at a node: progress)
leaves its connection among the frameless ones to give way; at a node a frame alone takes it
out."""

from __future__ import annotations

import collections
import random
import sys

import pytest

from tests.test_review60f_refuted import _Held
from tests.test_transport_tcp import Server, answer, run, until
from troth.transport import TcpSettings
from troth.transport.eviction import eviction_candidate
from troth.transport.frameless import Frameless

HOSTS = [f"10.0.{n // 3}.{n % 3}" for n in range(8)]  # 3 /24s, 8 addresses


def _churn(rng: random.Random, *, strict: bool) -> tuple[collections.Counter[str], int]:
    """A cap of 24 under 4,000 random steps: connections accepted (at the cap, the victim the
    indexed rule picks checked against the full scan's, `unproven` not given), proving (the
    transport told, as `TcpTransport.proved` is), closing. What each outcome was, and the most
    heap entries the index held."""
    table: dict[_Held, None] = {}
    index: Frameless[_Held] = Frameless()
    per_host: collections.Counter[str] = collections.Counter()
    per_network: collections.Counter[str] = collections.Counter()
    seen: collections.Counter[str] = collections.Counter()
    most_entries = 0

    def forget(gone: _Held) -> None:
        del table[gone]
        index.discard(gone)
        for counts, key in ((per_host, gone.host), (per_network, gone.network)):
            counts[key] -= 1
            if not counts[key]:
                del counts[key]

    for step in range(4000):
        roll = rng.random()
        if roll < 0.5 or not table:
            host = rng.choice(HOSTS[: rng.choice((2, 8))])  # a few addresses flood at times
            newcomer = _Held(host, host.rsplit(".", 1)[0], progress=0, frames_read=0)
            newcomer.liveness.opened(float(step))
            if len(table) >= 24:
                scanned = eviction_candidate(
                    list(table), newcomer, per_host, per_network, strict=strict,
                    evict_idle_after=300.0,
                )  # fmt: skip
                victim = eviction_candidate(
                    list(table), newcomer, per_host, per_network, strict=strict,
                    evict_idle_after=300.0, unproven=index,
                )  # fmt: skip
                assert victim is scanned
                seen["frameless" if index and scanned in index else "other"] += 1
                if victim is None:
                    seen["refused"] += 1
                    continue
                forget(victim)
            table[newcomer] = None
            index.add(newcomer, newcomer.host)
            per_host[host] += 1
            per_network[newcomer.network] += 1
        elif roll < 0.9:  # (mostly the newest: honest peers send at once)
            connection = next(reversed(table)) if rng.random() < 0.7 else rng.choice(list(table))
            if rng.random() < 0.5:
                connection.frames_read += 1
            else:
                connection.progress += 1
            connection.liveness.last_active = float(step)
            if connection.progress if strict else connection.frames_read:
                index.discard(connection)  # (as the transport hears of it)
        else:
            forget(rng.choice(list(table)))
        assert list(index) == [c for c in table if c in index]  # oldest first
        most_entries = max(most_entries, index.ranked.entries())
    return seen, most_entries


@pytest.mark.parametrize("strict", [True, False])
def test_the_indexed_frameless_victim_is_the_scans_under_churn(strict: bool) -> None:
    """At a cap of 24, from 8 addresses in 3 networks (at times 2 addresses flood), 4,000
    random accepts, first frames and progress, and closes: each newcomer at the cap has the
    same connection give way (or none) whether the transport's frameless index is given or the
    whole table is scanned (the rule before: the oldest of the address holding the most
    frameless, of equals the one whose oldest is the oldest), and the index's heaps hold a
    bounded number of entries (stale ones filtered), not one per change."""
    seen, most_entries = _churn(random.Random(60 + strict), strict=strict)
    assert seen["frameless"] > 300
    assert seen["other"] > seen["refused"] > 20  # (the fair shares and the idlest too)
    assert most_entries <= 100


pytestmark_linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="127/8")


@pytestmark_linux
@pytest.mark.usefixtures("loopback_sources")  # its clients stand for remote hosts
def test_a_first_frame_takes_a_connection_out_of_the_frameless_at_once() -> None:
    """Off a node, a connection that brings a frame leaves the frameless ones at once (no
    newcomer at the cap needed to look at it): were it kept, an attacker's newcomers would have
    it give way as "frameless"."""

    async def test(server: Server) -> None:
        transport = server.transport
        quiet = await server.client("127.0.71.1")
        busy = await server.client("127.0.71.2")
        await until(lambda: len(transport._unproven) == 2)
        assert await answer(busy) == b"ping"
        assert [c.host for c in transport._unproven] == ["127.0.71.1"]
        for _, writer in (quiet, busy):
            writer.close()
        await until(lambda: not transport._accepted)
        assert not transport._unproven

    run(test, TcpSettings(max_connections=8))


@pytestmark_linux
def test_at_a_node_a_frame_alone_leaves_a_connection_frameless_until_progress() -> None:
    """At a node (`authenticated_idle`), a junk frame does not take a connection out of the
    frameless ones (review 50e, idle 2: junk makes no progress); its first authenticated
    progress (`progressed`, as its channel calls it) does."""

    async def test(server: Server) -> None:
        transport = server.transport
        transport.authenticated_idle = True
        streams = await server.client("127.0.71.3")
        assert await answer(streams) == b"ping"
        (connection,) = transport._accepted
        assert connection.frames_read == 1
        assert list(transport._unproven) == [connection]
        connection.progressed()
        assert not transport._unproven
        streams[1].close()
        await until(lambda: not transport._accepted)

    run(test, TcpSettings(max_connections=8))
