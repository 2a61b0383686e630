"""Review 67w, transport: review 67p's tunnelled peers against the IPv4 hosts they name
(issue #8).

Transport 1 ("a 6to4 or Teredo peer spends the quota of the IPv4 host it names"). Since
review 67p a 6to4 (`2002::/16`) or Teredo (`2001::/32`) peer is counted as the IPv4 address
written in it, the very source a native IPv4 peer at that address is. Completing a TCP
handshake from such an address takes the node's replies, which the node's nearest 6to4 or
Teredo relay sends to that IPv4 address, so an ordinary peer can name only its own address;
but the party running the relay on the node's return path (any operator may announce
`2002::/16` or `2001::/32`: they are relays' routes, not filtered as hijacks) receives those
replies, and can complete handshakes naming ANY IPv4 address. Before 67p it got networks of
its own (the /48s of 2002::/16) and harmed no IPv4 host; now it fills an honest host's
`max_connections_per_source` and its /24's count, so that host's own connections are refused
(`refused: too many connections from ...`) and its network's evicted first. A host reaching
the node both natively and through 6to4 would, with its own namespace for tunnelled peers,
hold at most twice its quota, which is what 67p's finding was not about (it was 256 /48s per
/24, 65,536 per Teredo client).

Fixed (lead): `troth.transport.connection.source_host` counts a 6to4 peer as its /48 and a
Teredo peer as its client bits alone (the server dropped), a namespace apart from the IPv4
host, and `source_network` groups them per IPv4 /24 (a /40, a /56), keeping 67p's fix.
"""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from tests.test_review62f_refuted import _Socket
from tests.test_review67c_transport import _stop
from troth.routing import Router
from troth.transport import Listener, TcpSettings, TcpTransport
from troth.transport.tcp import TcpConnection


def _accept(transport: TcpTransport, peer: str) -> _Socket:
    socket = _Socket(peer)
    connection = TcpConnection(transport, outgoing=False, listener=Listener(), peer="?")
    connection.connection_made(socket)
    return socket


def _sixtofour(v4: str) -> str:
    return str(ipaddress.IPv6Address((0x2002 << 112) | (int(ipaddress.IPv4Address(v4)) << 80) | 1))


def _teredo(v4: str) -> str:
    client = int(ipaddress.IPv4Address(v4)) ^ 0xFFFFFFFF
    return str(ipaddress.IPv6Address((0x20010000 << 96) | (0x41000001 << 64) | client))


@pytest.mark.parametrize("tunnel", [_sixtofour, _teredo])
def test_a_tunnelled_peer_does_not_spend_the_quota_of_the_ipv4_host_it_names(
    tunnel: object,
) -> None:
    """The per-source cap at 2: two connections from a 6to4 or Teredo address naming
    198.51.100.7 (the party relaying for the node completes their handshakes), then the host
    at 198.51.100.7 itself connects natively: it is accepted."""

    async def test() -> None:
        transport = TcpTransport(
            Router(), TcpSettings(max_connections=16, max_connections_per_source=2),
            authenticated_idle=True,
        )  # fmt: skip
        assert callable(tunnel)
        for _ in range(2):
            assert not _accept(transport, tunnel("198.51.100.7")).aborted
        honest = _accept(transport, "198.51.100.7")
        _stop(transport)
        assert not honest.aborted

    asyncio.run(test())
