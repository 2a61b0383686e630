"""Review 57u: attacks on review 57n's per-network handshake budget (troth.node.opening_rates).

Openings 1: the budget is spent once the source's own limits let a message 1 in, but those
limits count what a source holds, not how fast it opens: a source that drops its connection
frees its half-open handshakes and opens 16 more over a new one, so one address spent its whole
/24's budget, and while it went on, every message 1 its refill let in (its neighbours' were
dropped). Fixed: one source spends at most half its network's refill
(`HANDSHAKE_SOURCE_SHARE`; the whole burst still at once).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.support.hostile_tcp import accepted, hostile_hub, raw
from tests.support.load import message_1
from tests.test_reconnect import until
from troth.node.channel_limits import ChannelLimits
from troth.node.opening_rates import OpeningRates

PER_SOURCE = ChannelLimits().max_half_open_per_source
BURST = 64
NETWORK = "tcp 10.34.0.0/24"


def at_times(test: Callable[[list[float]], Awaitable[None]]) -> None:
    """Run `test(clock)` on an event loop whose clock reads `clock[0]` (set by the test)."""
    clock = [1000.0]
    loop = asyncio.new_event_loop()
    loop.time = lambda: clock[0]  # type: ignore[method-assign]
    try:
        loop.run_until_complete(test(clock))
    finally:
        loop.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs 127/8")
def test_one_address_reconnecting_is_held_to_its_networks_budget(tmp_path: Path) -> None:
    """127.0.34.1 sends its 16 messages 1 over a connection, drops it and does it again, to
    twice the network's burst: its own per-source limit refuses none of them, the network's
    budget does (what the source's share, below, is for)."""
    limits = ChannelLimits(handshake_burst=BURST, handshake_rate=1)

    async def main() -> None:
        async with hostile_hub(tmp_path, limits=limits) as hub:
            counters = hub.channels.counters

            def judged() -> int:  # the messages 1 the node took up or refused for the rate
                return counters.handshakes_started + counters.refused_handshake_rate

            for n in range(2 * BURST // PER_SOURCE):
                sock = raw(hub, "127.0.34.1")
                before = judged()
                sock.sendall(b"".join(message_1(f"f-{n}-{m}") for m in range(PER_SOURCE)))
                await until(lambda: judged() == before + PER_SOURCE)  # noqa: B023
                sock.close()  # its half-open handshakes go with the connection
                await until(lambda: not accepted(hub))
            assert counters.refused_half_open_per_source == 0, counters
            assert counters.refused_handshake_rate >= BURST - 2, counters  # a refill or two

    asyncio.run(main())


def test_one_source_flooding_leaves_its_neighbours_half_the_refill() -> None:
    """A source of a /24 spends the network's burst, then each second takes all it can; a
    neighbour on the same /24 is still taken up each second (it got none before the fix)."""

    async def test(clock: list[float]) -> None:
        rates = OpeningRates(rate=64, burst=256)
        for second in range(4):
            while rates.take("tcp 10.34.0.1", NETWORK):
                pass
            if second:  # the burst it may spend at once
                assert rates.take("tcp 10.34.0.2", NETWORK), second
            clock[0] += 1

    at_times(test)


def test_cycling_networks_short_of_the_bound_leaves_a_flooding_network_refused() -> None:
    """Two sources of 10.9.9.0/24 spend its budget; MAX_HANDSHAKE_NETWORKS - 1 other networks
    take an opening each; a third source of 10.9.9.0/24 is still refused (the event loop's
    clock stands still: nothing refills). Eviction gives a flooding network its budget back only
    after as many networks as the bound, each with a full budget of its own (review 57u,
    refuted)."""
    from troth.limits import MAX_HANDSHAKE_NETWORKS

    async def test(_clock: list[float]) -> None:
        rates = OpeningRates(rate=1, burst=4)
        for source in ("flood 1", "flood 2"):
            while rates.take(source, "tcp 10.9.9.0/24"):
                pass
        for n in range(MAX_HANDSHAKE_NETWORKS - 1):
            assert rates.take(f"tcp 10.{n // 256}.{n % 256}.1", f"tcp 10.{n // 256}.{n % 256}.0")
        assert not rates.take("flood 3", "tcp 10.9.9.0/24")  # the network's budget is spent

    at_times(test)
