"""Review 57c, handshakes 1: messages 1 from one network's addresses are taken up at any rate,
each costing the node a responder's handshake work (~0.4 ms of CPU).

A message 1 is 35 bytes of packet (~80 on the wire); taking it up costs the node the
responder's side of XX up to message 2 (two X25519 operations, the identity payload encrypted,
message 2 written): measured here ~0.4 ms of CPU each. The half-open table bounds how many are
held (256, 16 per source), not how many are taken up: at the table's cap a newcomer evicts the
oldest of the network holding the most (review 34e, handshakes 2; review 53g, handshakes 1),
which frees a slot of the flooding network's own sources, so they never meet their per-source
limit. 400 addresses of two /24s, 10 messages 1 each, had all 4,000 taken up (3,744 evicted)
for ~1.6 s of the node's CPU; ~2,500 a second (~200 KB/s from one /24) hold a core, and every
genuine handshake and request on the node waits behind them. Nothing bounds the rate per
network (nor globally).

Fixed (was a strict xfail): a budget of handshakes taken up per network (`_source_network`, as
the half-open table judges them), a token bucket (troth.node.opening_rates: a burst of
`HANDSHAKE_BURST`, 256, then `HANDSHAKE_RATE`, 64, a second; `TROTH_CHANNELS_HANDSHAKE_*`),
spent in `ChannelManager._listen` before `_make_room`: a message 1 past it is dropped and
counted (`refused_handshake_rate`), as one past the per-source limit is. A network's own flood
spends its own budget; a newcomer from another network still finds its own (the second half of
the test). Sources from many networks (an IPv6 /32's /48s) still add up; a cookie exchange
under load (WireGuard's) would bound those, at the cost of a protocol change.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.support.hostile_tcp import accepted, frames_from, hostile_hub, raw
from tests.support.load import attacker_addresses, message_1
from tests.test_reconnect import until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs 127/8")

SENT = 2_000
"""Messages 1 of the burst, 10 from each of 200 addresses of one /24."""
PER_NETWORK = 1_024
"""The most of them a network's handshake budget may take up in the burst's few seconds (four
times the half-open table: any bucket of a sensible burst and rate stays under it)."""


@pytest.mark.usefixtures("loopback_sources")  # its clients stand for remote hosts
def test_a_networks_burst_of_messages_1_is_not_all_taken_up(tmp_path: Path) -> None:
    """2,000 messages 1 at once from the 200 addresses of 127.0.30.0/24 (no source ever holds
    more than its 16): the node takes up at most `PER_NETWORK` of them; and a message 1 from
    another network is answered after the burst."""

    async def main() -> None:
        async with hostile_hub(tmp_path) as hub:
            counters = hub.channels.counters
            sources = attacker_addresses(200, subnet=30)
            socks = await asyncio.to_thread(lambda: [raw(hub, a) for a in sources])
            await until(lambda: len(accepted(hub)) == len(sources))

            def burst() -> None:
                for n in range(SENT):
                    socks[n % len(socks)].sendall(message_1(f"burst-{n}"))

            try:
                await asyncio.to_thread(burst)
                flood = [c for c in accepted(hub) if c.host.startswith("127.0.30.")]
                await until(lambda: sum(c.frames_read for c in flood) == SENT)  # all handled
                other = raw(hub, "127.0.31.1")
                other.sendall(message_1("newcomer"))
                assert len(await frames_from(other, 1)) == 1
                other.close()
            finally:
                for sock in socks:
                    sock.close()
            assert counters.handshakes_started <= PER_NETWORK + 1, counters

    asyncio.run(main())
