"""Review 29b, sources 1: a relayed node counted one IPv6 /64 as 2^64 sources again (docs/
protocols.md, "Routing", origin).

Review 28a (sources 1) made every per-source limit count an IPv6 peer by its /64 network
(`source_host`): `Connection.host` became the /64. But a relay node names the sender behind
what it relays by a second key, the host tag in its accepted connection's worker address
(`_accepted_address`), which the relay puts in the return route; the relayed node counts what
arrives through the relay by that tag (`Connection.origin`: "via host <tag>"), for its
handshakes in progress, its channels per source and its request lanes. A TCP connection
learns its peer only once accepted (`set_peer`), and `set_peer` tagged the address with the
raw IP address, not its source: each address of one /64 had a tag of its own, so through a
relay one host still had 2^64 sources, one message 1 from each of 256 filling the relayed
node's half-open table (the attack review 28a closed for direct peers). An IPv4-mapped address
and its IPv4 one were two sources there too.

The test builds the relay's accepted connections as `connection_made` does (`set_peer` with the
socket's peer name) and asks the relayed node's connection to that relay whom a message with
each return route comes from.

Was a strict xfail until `set_peer` tagged an accepted connection's address by its source
(`Connection.host`, `source_host`), as the constructor already did (the in-memory transport's
connections, which know their peer at once, were tagged so since review 28a).
"""

from __future__ import annotations

import asyncio

from troth.routing import Router
from troth.transport.tcp import TcpConnection, TcpTransport


def _origins(hosts: list[str]) -> list[str]:
    """What the relayed node's connection to the relay counts a message from each of `hosts`
    (each an accepted connection at the relay) under."""

    async def test() -> list[str]:
        relay = TcpTransport(Router())
        node = TcpTransport(Router())
        to_relay = TcpConnection(node, outgoing=True, listener=None, peer="relay:4000")
        origins = []
        for port, host in enumerate(hosts, start=40000):
            accepted = TcpConnection(relay, outgoing=False, listener=None, peer="?")
            accepted.set_peer(host, port)  # as connection_made does with the socket's peername
            origins.append(to_relay.origin((to_relay.address, accepted.address)))
        return origins

    return asyncio.run(test())


def test_a_relayed_node_counts_the_addresses_of_one_ipv6_network_as_one_source() -> None:
    one, two, other = _origins(["2001:db8:0:1::5", "2001:db8:0:1:ffff::6", "2001:db8:0:2::5"])
    assert one == two
    assert other != one  # another /64 is another source


def test_a_relayed_node_counts_an_ipv4_mapped_address_as_its_ipv4_one() -> None:
    mapped, plain, other = _origins(["::ffff:10.0.0.7", "10.0.0.7", "10.0.0.8"])
    assert mapped == plain
    assert other != plain
