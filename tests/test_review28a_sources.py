"""Review 28a, sources 1: every per-source limit counts one IP address as one source, and an
IPv6 peer has a whole /64 of them (docs/protocols.md, "Load limits").

The per-source limits stand between one attacker and everyone else: connections
(`max_connections_per_source`), queued bytes (`queued_per_source`, a quarter of the total since
review 27a, queue 1, so that one address's slow readers cannot hold all of it), handshakes in
progress and channels (`max_half_open_per_source`, `max_channels_per_source`), requests running
over a connection. They were keyed by the peer's IP address as the socket gives it. A host on
an IPv6 network is given a /64 (2^64 addresses, each one it may use as its source at will):
spread over four of them, its silent readers held the whole queued total again; one
handshake from each of 256 of them filled the node's half-open table (`max_half_open`), where a
newcomer is refused while no source holds more than it would: no one else could open a channel
to the node, for one message 1 per address every handshake timeout.

The test uses the channel manager's limit on handshakes in progress per source, over the
in-memory transport (whose connections count sources as TCP's do): 40 handshakes, each from
another address of one /64, where 16 are the most one source may have in progress.

Was a strict xfail until a connection's source (`Connection.host`, which every per-source
limit counts under) was an IPv6 peer's /64 network (an IPv4-mapped address its IPv4 one).
"""

from __future__ import annotations

import pytest

from tests.test_channel_manager import Net, message_1, run, until
from troth.node.channels import ChannelLimits
from troth.routing import Router
from troth.transport.connection import source_host
from troth.transport.memory import MemoryTransport


def test_handshakes_from_the_addresses_of_one_ipv6_network_count_as_one_source() -> None:
    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_half_open_per_source=16))
        for n in range(40):
            flooder = Router()
            MemoryTransport(flooder, net.network, host=f"2001:db8:0:1::{n + 1:x}")
            await flooder.route(message_1(f"flood-{n}"))
        counters = hub.manager.counters
        await until(
            lambda: counters.handshakes_started + counters.refused_half_open_per_source == 40
        )
        assert counters.handshakes_started == 16
        assert counters.refused_half_open_per_source == 24

    run(test)


@pytest.mark.parametrize(
    ("host", "source"),
    [
        ("10.0.0.7", "10.0.0.7"),
        ("2001:db8:0:1::5", "2001:db8:0:1::/64"),
        ("2001:DB8:0:1:ffff:1:2:3", "2001:db8:0:1::/64"),
        ("::ffff:10.0.0.7", "10.0.0.7"),
        ("hub", "hub"),  # a name (an outgoing connection's host): as it is
        ("", ""),
    ],
)
def test_the_source_of_a_host(host: str, source: str) -> None:
    assert source_host(host) == source
