"""Review 67w, transport: attacks on review 67p's changes (6to4 and Teredo peers counted as
their IPv4 address; `Refusals.admitted` raising a remembered refusal as a connection comes)
that did not work (issue #8).

- The `fair` raise of `Refusals.admitted` (67p had no test failing without it): a network
  that spent its shielded eviction and holds no frameless connection is answered by the
  remembered refusal whatever its network holds (review 67c, transport 1), so a connection
  admitted after the scan, its address now holding two more than the newcomer's, in a
  network holding no fewer than the newcomer's but fewer than two more, is the fair share's
  victim only if `fair` was raised: without the raise, the newcomer was refused where a scan
  takes that address's idlest connection
  (`test_a_spent_networks_newcomer_takes_a_fair_share_admitted_after_the_refusal`).
- Teredo: the server field (bits 32-63, which the client chooses) and the flags and port are
  not counted, only the client's address, bit-inverted in the last 32 bits (RFC 4380 §4); one
  client through any server is one source.
- Other embedded forms give no peer a network it could not have anyway: an ISATAP interface
  identifier (`::5efe:a.b.c.d`, `::200:5efe:a.b.c.d`) lies under its site's own /64, which is
  what is counted, never the IPv4 address written in it (so no peer claims an IPv4 /24
  through it); a 6to4 or Teredo address of another IPv4 address is counted there, as that
  address itself would be (a TCP handshake from it needs the replies, which the relays send
  to that IPv4 address: a peer that can take them there can connect from that address too).
"""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from tests.test_review62f_refuted import _Socket
from tests.test_review67c_transport import _stop
from troth.routing import Router
from troth.transport import Listener, TcpSettings, TcpTransport
from troth.transport.connection import source_host, source_network
from troth.transport.tcp import TcpConnection


def _accept(transport: TcpTransport, peer: str) -> tuple[TcpConnection, _Socket]:
    socket = _Socket(peer)
    connection = TcpConnection(transport, outgoing=False, listener=Listener(), peer="?")
    connection.connection_made(socket)
    return connection, socket


@pytest.mark.parametrize(
    ("second", "member"), [("192.0.0.1", "192.0.9.1"), ("192.0.0.2", "192.0.6.1")]
)
def test_a_spent_networks_newcomer_takes_a_share_admitted_after_the_refusal(
    second: str, member: str
) -> None:
    """A cap of 6: members (progress made) 192.0.0.1 (X), `member` (of Y, 192.0.9.0/24, or of
    its own /24: Y holding one, or none) and three others of their own /24s, and a junk
    connection of 203.0.113.0/24. Y's 192.0.9.3 evicts the junk mid-handshake (Y's spend) and
    closes. A member fills the cap, a newcomer of a fresh /24 is
    refused (remembered: no address or network holds two), the member closes, and `second` of
    X gets in (X, and 192.0.0.1 too, now hold two). Y's 192.0.9.2 (its network spent, holding
    no frameless connection) then takes 192.0.0.1's idlest connection, as a scan finds (the
    fair share: an address holding two more than its own, of a network holding no fewer than
    its own, Y holding one — the `fair` raise; or a network holding two more than its own, Y
    holding none — the raise of the most one network holds), not refused by the remembered
    refusal."""

    async def test() -> None:
        loop = asyncio.get_running_loop()
        clock = [1000.0]
        loop.time = lambda: clock[0]  # type: ignore[method-assign]
        transport = TcpTransport(Router(), TcpSettings(max_connections=6), authenticated_idle=True)
        members = {}
        for peer in ("192.0.0.1", member, "192.0.1.1", "192.0.2.1", "192.0.3.1"):
            clock[0] += 0.01
            members[peer] = _accept(transport, peer)
            members[peer][0].progressed()
        _junk, junk = _accept(transport, "203.0.113.5")
        spender, _socket = _accept(transport, "192.0.9.3")
        assert junk.aborted  # Y's spend
        assert transport.counters.evicted == 1
        spender.connection_lost(None)
        filler, _socket = _accept(transport, "192.0.4.1")
        filler.progressed()
        _refused, refused = _accept(transport, "198.51.100.1")
        assert refused.aborted  # remembered: no connection gives way
        filler.connection_lost(None)
        _second, socket = _accept(transport, second)
        assert not socket.aborted
        _newcomer, newcomer = _accept(transport, "192.0.9.2")
        assert not newcomer.aborted
        assert members["192.0.0.1"][1].aborted  # the idlest of the address holding two
        _stop(transport)

    asyncio.run(test())


def test_a_network_reaching_the_scanned_newcomers_brings_its_addresses_into_the_fair_share() -> (
    None
):
    """A cap of 9: members (progress made) of 192.0.1.0/24 (three addresses), 192.0.0.1
    (two connections) and three others; a junk connection of 203.0.113.0/24. Y's 192.0.9.4
    evicts the junk mid-handshake (Y's spend) and closes; the three others give way to three
    members of Y (192.0.9.1-3), and a member fills the cap. A newcomer of 192.0.1.0/24
    (holding three) is refused (remembered: no address of a network holding three holds
    two). The member closes and 192.0.0.2 gets in: 192.0.0.0/24 now holds three, so
    192.0.0.1's two count for the fair share. Y's 192.0.9.5 (its network spent, holding three
    and no frameless connection) takes 192.0.0.1's idlest connection, as a scan finds, not
    refused by the remembered refusal (the raise to the most one address holds)."""

    async def test() -> None:
        loop = asyncio.get_running_loop()
        clock = [1000.0]
        loop.time = lambda: clock[0]  # type: ignore[method-assign]
        transport = TcpTransport(Router(), TcpSettings(max_connections=9), authenticated_idle=True)
        held = {}
        peers = ("192.0.1.1", "192.0.1.2", "192.0.1.3", "192.0.0.1", "192.0.0.1")
        for n, peer in enumerate((*peers, "192.0.2.1", "192.0.3.1", "192.0.4.1")):
            clock[0] += 0.01
            held[n] = _accept(transport, peer)
            held[n][0].progressed()
        _junk, junk = _accept(transport, "203.0.113.5")
        spender, _socket = _accept(transport, "192.0.9.4")
        assert junk.aborted  # Y's spend
        assert transport.counters.evicted == 1
        spender.connection_lost(None)
        for n in (5, 6, 7):
            held[n][0].connection_lost(None)
            member, _socket = _accept(transport, f"192.0.9.{n - 4}")
            member.progressed()
        filler, _socket = _accept(transport, "192.0.5.1")
        filler.progressed()
        _refused, refused = _accept(transport, "192.0.1.9")
        assert refused.aborted  # remembered: no connection gives way
        filler.connection_lost(None)
        _third, third = _accept(transport, "192.0.0.2")
        assert not third.aborted
        _newcomer, newcomer = _accept(transport, "192.0.9.5")
        assert not newcomer.aborted
        assert held[3][1].aborted  # 192.0.0.1's idlest
        _stop(transport)

    asyncio.run(test())


def _teredo(server: int, flags: int, port: int, v4: str) -> str:
    client = int(ipaddress.IPv4Address(v4)) ^ 0xFFFFFFFF
    return str(
        ipaddress.IPv6Address(
            (0x20010000 << 96) | (server << 64) | (flags << 48) | ((port ^ 0xFFFF) << 32) | client
        )
    )


@pytest.mark.parametrize(
    ("server", "flags", "port"),
    [(0x41D0000F, 0, 40000), (0xC0000201, 0x8000, 1), (0xFFFFFFFF, 0xFFFF, 65535), (0, 0, 0)],
)
def test_a_teredo_peer_is_its_client_address_whatever_server_flags_and_port_it_writes(
    server: int, flags: int, port: int
) -> None:
    """The client's IPv4 address is its last 32 bits inverted; the server (which the client
    chooses), the flags and the port change nothing; the source is the client's address apart
    from the IPv4 host's (2001:0:C::/64: transport 1), its network the /56 of C's /24."""
    assert source_host(_teredo(server, flags, port, "198.51.100.23")) == "2001:0:c633:6417::/64"
    assert source_network(source_host(_teredo(server, flags, port, "198.51.100.23"))) == (
        "2001:0:c633:6400::/56"
    )


@pytest.mark.parametrize(
    "peer",
    ["2001:db8:7:1::5efe:198.51.100.23", "2001:db8:7:1:200:5efe:198.51.100.23"],
)
def test_an_isatap_peer_is_its_sites_network_not_the_ipv4_address_it_writes(peer: str) -> None:
    """An ISATAP interface identifier names an IPv4 address the peer writes itself; the /64
    (its site's prefix) is counted, so no peer lands in 198.51.100.0/24 through it."""
    assert source_host(peer) == "2001:db8:7:1::/64"
    assert source_network(source_host(peer)) == "2001:db8:7::/48"
