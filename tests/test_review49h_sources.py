"""Review 49h, channel.establish.tcp (a performance pass: benchmarks/README.md, "Channel
establishment"): `source_network` of an IPv4 source masks the address's integer instead of
building an `ip_network` and its `supernet` (~10 us of each accepted connection, ~2.7 us
now). Its answer must be the one review 48h (sources 1) gave for every source: checked here
against that code, kept as the reference."""

from __future__ import annotations

import ipaddress
import random

import pytest

from troth.transport.connection import IPV4_NETWORK_PREFIX, IPV6_NETWORK_PREFIX, source_network


def _reference(host: str) -> str:
    """source_network as review 48h wrote it."""
    text, _, zone = host.partition("%")
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return host
    prefix = IPV4_NETWORK_PREFIX if network.version == 4 else IPV6_NETWORK_PREFIX
    if network.prefixlen > prefix:
        network = network.supernet(new_prefix=prefix)
    return f"{network}%{zone}" if zone else str(network)


_EDGES = [
    "127.0.0.1",
    "0.0.0.1",
    "255.255.255.255",
    "10.1.2.3",
    "1.2.3.4%eth0",
    "1.2.3.4%",
    "1.2.3.4/32",
    "1.2.3.4/16",
    "1.2.3.0/24",
    "01.2.3.4",
    "1.2.3",
    "1.2.3.4.5",
    " 1.2.3.4",
    "256.1.1.1",
    "2001:db8::/64",
    "2001:db8:1:2::/64%eth0",
    "fe80::/64%eth0",
    "::ffff:1.2.3.4",
    "::1",
    "host.example",
    "",
    "%",
]


@pytest.mark.parametrize("host", _EDGES)
def test_source_network_answers_as_before(host: str) -> None:
    assert source_network(host) == _reference(host)


def test_source_network_answers_as_before_for_many_ipv4_sources() -> None:
    rng = random.Random(49)
    for _ in range(5000):
        host = str(ipaddress.IPv4Address(rng.getrandbits(32)))
        if rng.random() < 0.1:
            host += "%lo"
        assert source_network(host) == _reference(host), host
