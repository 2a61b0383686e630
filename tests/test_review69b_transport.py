"""Review 69b, transport: the loopback addresses as one source (issue #8).

Transport 1 ("a local user is as many sources as it has loopback spellings"). Review 68b,
transport 2 (fixed here, its test in tests/test_review68b_transport.py), found every address of
127.0.0.0/8 counted as a source of its own. The same host is also `::1` and, on a dual-stack
listener, `::ffff:127.x.y.z`: `::1` was the source `::/64` (shared with every IPv4-compatible
address `::a.b.c.d`) and a mapped one its IPv4 address, so a local user that held the
per-source caps over IPv4 held them again over IPv6. Now every spelling is `LOOPBACK_SOURCE`,
one source of one network, and nothing else is.
"""

from __future__ import annotations

from tests.test_review68b_transport import admitted
from troth.transport import TcpSettings
from troth.transport.connection import LOOPBACK_SOURCE, source_host, source_network


def test_every_spelling_of_this_host_is_one_source_of_one_network() -> None:
    spellings = ["127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.5"]  # (a NAT64 127.x is a
    # remote peer's: review 70e, sources 1)
    assert {source_host(one) for one in spellings} == {LOOPBACK_SOURCE}
    assert source_network(LOOPBACK_SOURCE) == LOOPBACK_SOURCE


def test_a_local_user_over_ipv4_and_ipv6_is_one_source() -> None:
    """The per-source cap at 2: 127.0.0.1, ::1, ::ffff:127.0.0.2: the third is refused."""
    settings = TcpSettings(max_connections=16, max_connections_per_source=2)
    assert admitted(["127.0.0.1", "::1", "::ffff:127.0.0.2"], settings) == [True, True, False]


def test_no_remote_address_is_the_loopback_source() -> None:
    """Neighbours of the loopback spellings stay sources of their own: 126.255.255.255,
    128.0.0.1, the IPv4-compatible ::7f00:1 (a /64, not this host), ::2, 6to4 of 127.0.0.1."""
    for host in ["126.255.255.255", "128.0.0.1", "::7f00:1", "::2", "2002:7f00:1::1"]:
        assert source_host(host) != LOOPBACK_SOURCE, host
