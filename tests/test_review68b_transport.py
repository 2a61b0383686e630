"""Review 68b, transport: one party with many addresses against the connection table's
sources and networks (issue #8).

Transport 1 ("every link's link-local peers are one source"). Review 29b, sources 2, made
`source_host` keep a link-local peer's zone (`fe80::/64%eth0`), so that one link's peers do
not share a source with another's, and tested it with host strings carrying the zone. The
socket never gives one: CPython's `getpeername()` for an IPv6 peer is (host, port, flowinfo,
scope_id), the host without its zone (on a veth pair in network namespaces, Linux, Python
3.11: `('fe80::b', 52917, 0, 3)`), and the transport read only the host. So the link-local
peers of every interface were the one source `fe80::/64` and one network: a host on one link
held `max_connections_per_source` (and the per-source queue and routing shares) for the
link-local peers of every other link, and filled their network's share. Fixed:
`troth.transport.connection.peer_host` adds the zone (the interface's name, or its index) from
the peername's scope id, as `source_host` expects it (checked live on that veth pair: a
TcpTransport listening on `::` counted the peer as `fe80::/64`, now `fe80::/64%va`).

Transport 2 ("a local user is as many sources and networks as it likes"). Every address of
127.0.0.0/8 is this host (RFC 1122 section 3.2.1.3; Linux answers on all of them with no
configuration), so an unprivileged local user connects from 127.a.b.c at will: 2**24 sources,
65,536 networks, where a remote IPv4 host is one and its /24 one. It passes the per-source cap
and the network shares at once. Fixed (review 69b): every loopback address (127.0.0.0/8, ::1,
an IPv4-mapped 127.x; a NAT64 one is remote: review 70e, sources 1) is one source of one
network, `LOOPBACK_SOURCE`; the tests
that use addresses of 127.0.0.0/8 over real TCP as distinct remote hosts name them apart
through a test-only seam (tests/support/sources.py: the `loopback_sources` fixture in the
test process, `node_environment` for node processes).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from tests.test_review62f_refuted import _Socket
from tests.test_review67c_transport import _stop
from troth.routing import Router
from troth.transport import Listener, TcpSettings, TcpTransport
from troth.transport.connection import peer_host
from troth.transport.tcp import TcpConnection


class Peername(_Socket):
    """An accepted socket whose peername is what asyncio hands over (`getpeername()`: None
    when the peer reset before it was asked; an IPv6 peer's (host, port, flowinfo, scope_id),
    the host without its zone)."""

    def __init__(self, peername: object) -> None:
        super().__init__("?")
        self.peername = peername

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peername if name == "peername" else default


def admitted_sockets(sockets: list[_Socket], settings: TcpSettings) -> list[bool]:
    """Which of `sockets`, each connecting in turn (none bringing a frame), are accepted."""

    async def test() -> list[bool]:
        transport = TcpTransport(Router(), settings)
        for one in sockets:
            connection = TcpConnection(transport, outgoing=False, listener=Listener(), peer="?")
            connection.connection_made(one)
        _stop(transport)
        return [not one.aborted for one in sockets]

    return asyncio.run(test())


def admitted(peers: list[str], settings: TcpSettings) -> list[bool]:
    """Which of `peers` (host strings), each connecting in turn, are accepted."""
    return admitted_sockets([_Socket(peer) for peer in peers], settings)


GONE = 2**31 - 7  # an interface index no interface has


def test_link_local_peers_on_two_interfaces_are_two_sources_as_the_socket_gives_them() -> None:
    """The per-source cap at 1: a link-local peer on lo (index 1) connects, then one on another
    interface, then a second on lo, each peername as the socket gives it: the first two are
    accepted (two links), the third refused (before: the second refused, one source)."""
    peers = [("fe80::b", 40000, 0, 1), ("fe80::c", 40000, 0, GONE), ("fe80::d", 40000, 0, 1)]
    settings = TcpSettings(max_connections=16, max_connections_per_source=1)
    sockets: list[_Socket] = [Peername(peer) for peer in peers]
    assert admitted_sockets(sockets, settings) == [True, True, False]


def test_a_peers_zone_is_its_interfaces_name_or_index() -> None:
    """The zone added is the interface's name (index 1 is lo on Linux), its index when no
    interface has it; a host with a zone, or without a scope, is as the socket gave it."""
    assert peer_host(("fe80::b", 1, 0, 1)) == f"fe80::b%{socket.if_indextoname(1)}"
    assert peer_host(("fe80::b", 1, 0, GONE)) == f"fe80::b%{GONE}"
    assert peer_host(("fe80::b%eth0", 1, 0, 2)) == "fe80::b%eth0"
    assert peer_host(("2001:db8::1", 1, 0, 0)) == "2001:db8::1"
    assert peer_host(("192.0.2.7", 1)) == "192.0.2.7"


def test_a_local_user_is_one_source_whatever_loopback_address_it_sends_from() -> None:
    """The per-source cap at 2: a local user connects from 127.0.0.1, 127.0.0.2, 127.1.0.1 and
    127.255.0.9; its first two are accepted, the rest refused."""
    peers = ["127.0.0.1", "127.0.0.2", "127.1.0.1", "127.255.0.9"]
    settings = TcpSettings(max_connections=16, max_connections_per_source=2)
    assert admitted(peers, settings) == [True, True, False, False]
