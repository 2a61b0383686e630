"""Review 29b, sources 2-3: since review 28a (sources 1) counted an IPv6 peer by its /64
network (`source_host`), two kinds of IPv6 address put peers that are not one host under one
source, so one of them holds every per-source limit for all (docs/protocols.md, "Routing",
origin; "Load limits").

2. A link-local address (fe80::/10) names a host on one link only, and every link's is
   fe80::/64: the socket gives it with its zone (`fe80::1%eth0`), and `source_host` dropped the
   zone, so the link-local peers on every interface of the node were one source: a host on one
   link (a guest network, a lab segment) held the half-open handshakes, the channels and the
   connections per source of the link-local peers on every other.

3. An IPv4 address embedded in the well-known NAT64 prefix (64:ff9b::/96, RFC 6052) is how an
   IPv4 client reaches an IPv6-only node through a stateless translator (SIIT, RFC 7915; the
   data-centre form of RFC 7755): every IPv4 client of the internet came from 64:ff9b::/64, one
   source, where each IPv4 address was one before review 28a. An embedded IPv4 address counts
   as that IPv4 address, as an IPv4-mapped one does.

Each test fills the hub's limit of handshakes in progress per source (16) from one source,
over the in-memory transport (whose connections count sources as TCP's do), then sends one
message 1 from another, which must be started.

Were strict xfails until `source_host` kept a link-local peer's zone in its source
(`fe80::/64%eth0`) and counted an address in 64:ff9b::/96 as its IPv4 address.
"""

from __future__ import annotations

import pytest

from tests.test_channel_manager import Net, message_1, run, until
from troth.node.channels import ChannelLimits
from troth.routing import Router
from troth.transport.connection import source_host
from troth.transport.memory import MemoryTransport

HELD = 16


def _started_after_flood(flood: list[str], newcomer: str) -> int:
    """Handshakes the hub started once `flood` (one message 1 from each host) and then
    `newcomer` sent theirs, with at most HELD in progress per source."""
    started = 0

    async def test(net: Net) -> None:
        nonlocal started
        hub = await net.hub(limits=ChannelLimits(max_half_open_per_source=HELD))
        counters = hub.manager.counters

        async def handled(count: int) -> None:  # started or refused: message 1 was judged
            await until(
                lambda: counters.handshakes_started + counters.refused_half_open_per_source == count
            )

        for n, host in enumerate([*flood, newcomer]):
            sender = Router()
            MemoryTransport(sender, net.network, host=host)
            await sender.route(message_1(f"sender-{n}"))
            await handled(n + 1)
        started = counters.handshakes_started

    run(test)
    return started


def test_link_local_peers_on_two_interfaces_are_two_sources() -> None:
    flood = [f"fe80::{n + 1:x}%eth1" for n in range(HELD)]
    assert _started_after_flood(flood, "fe80::1%eth0") == HELD + 1
    # the guard: on one link, its /64 is one source (review 28a)
    assert _started_after_flood(flood, "fe80::99%eth1") == HELD


def test_ipv4_clients_through_the_nat64_prefix_are_a_source_each() -> None:
    flood = ["64:ff9b::10.0.0.7"] * HELD
    assert _started_after_flood(flood, "64:ff9b::10.0.0.8") == HELD + 1
    # the guard: the IPv4 address is one source however it arrives
    assert _started_after_flood(flood, "10.0.0.7") == HELD


@pytest.mark.parametrize(
    ("host", "source"),
    [
        ("fe80::1%eth0", "fe80::/64%eth0"),
        ("fe80::2:1%eth0", "fe80::/64%eth0"),
        ("fe80::1", "fe80::/64"),  # no zone given: as any /64
        ("64:ff9b::10.0.0.7", "10.0.0.7"),
        ("64:ff9b::a00:8", "10.0.0.8"),
        ("64:ff9b:1::10.0.0.7", "10.0.0.7"),  # a local-use prefix, /96 layout (review 62f, 62p)
    ],
)
def test_the_source_of_a_scoped_or_translated_host(host: str, source: str) -> None:
    assert source_host(host) == source
