"""Review 57u: attacks on review 57n's per-network handshake budget (troth.node.opening_rates).

Openings 1: the budget is spent once the source's own limits let a message 1 in, but those
limits count what a source holds, not how fast it opens: a source that drops its connection
frees its half-open handshakes at once and opens 16 more over a new one, so one address spent
its whole /24's budget and its neighbours' messages 1 were dropped for as long as it went on.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.support.hostile_tcp import accepted, frames_from, hostile_hub, raw
from tests.support.load import message_1
from tests.test_reconnect import until
from troth.node.channel_limits import ChannelLimits

PER_SOURCE = ChannelLimits().max_half_open_per_source
BURST = 64


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs 127/8")
def test_one_address_reconnecting_leaves_its_neighbours_budget(tmp_path: Path) -> None:
    """127.0.34.1 sends its 16 messages 1 over a connection, drops it and does it again, to
    twice the network's burst (its rate 1 a second: the flood outpaces it, as a 64/s one
    outpaces 64); 127.0.34.2, on the same /24, is then still answered."""
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
            neighbour = raw(hub, "127.0.34.2")  # two: a second may pass, one more refilled
            try:
                neighbour.sendall(message_1("neighbour-1") + message_1("neighbour-2"))
                assert len(await frames_from(neighbour, 2, timeout=2.0)) == 2, counters
            finally:
                neighbour.close()

    asyncio.run(main())
