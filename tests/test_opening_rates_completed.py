"""Handshake openings that complete are given back (`OpeningRates.give_back`): a client opening
channel after channel from one address, each handshake finished, is never refused (troth
bench's `channel.establish` timed out past the burst), while openings that never complete still
spend the network's budget."""

from __future__ import annotations

import asyncio

from troth.limits import HANDSHAKE_BURST
from troth.node.opening_rates import OpeningRates


def test_completed_openings_past_the_burst_are_all_taken_up() -> None:
    async def main() -> None:
        rates = OpeningRates(rate=1, burst=HANDSHAKE_BURST)
        for _ in range(4 * HANDSHAKE_BURST):
            assert rates.take("10.0.0.1", "10.0.0.0/24")
            rates.give_back("10.0.0.1", "10.0.0.0/24")

    asyncio.run(main())


def test_openings_that_never_complete_still_run_out() -> None:
    async def main() -> None:
        rates = OpeningRates(rate=1, burst=HANDSHAKE_BURST)
        taken = sum(rates.take("10.0.0.1", "10.0.0.0/24") for _ in range(2 * HANDSHAKE_BURST))
        assert taken <= HANDSHAKE_BURST + 2  # the burst, and at most a second's refill
        rates.give_back("10.0.0.2", "10.0.0.0/24")  # a neighbour's completed handshake
        assert rates.take("10.0.0.2", "10.0.0.0/24")  # its own opening, given back

    asyncio.run(main())
