"""Review 70e, sources: the loopback source seen from the network (second review of 69b).

Sources 1 ("a remote peer shares this host's loopback source"). Review 69b made every loopback
spelling one source, `LOOPBACK_SOURCE`, since a local user sends from any address of 127.0.0.0/8
(and `::1`, `::ffff:127.x`) at will; it counted an address in a NAT64 prefix holding a 127.x
(`64:ff9b::7f00:1`, RFC 6052; RFC 8215's local-use `64:ff9b:1::/48`) as that source too. No
local user sends from such an address (the kernel gives a local client 127.x, `::1` or
`::ffff:127.x`; assigning a NAT64 address takes root), and RFC 6052 section 3.1 forbids the
well-known prefix to carry a non-global IPv4 address: a peer there is a remote one behind a
translator (or one routing that prefix to the node), never this host. Counted as
`LOOPBACK_SOURCE`, it spent the one source the nodes on this machine share (its connections,
queued bytes, half-open handshakes and openings), so a remote party that could send from it
locked the co-located nodes out of the node they reach over 127.0.0.1. Its 6to4 and Teredo
spellings were already sources apart (tests/test_review69b_transport.py). Fixed: a translated
127.x is a source of its own, apart from `LOOPBACK_SOURCE`: the /104 holding it (its
translator's prefix and 127.0.0.0/8), one source however many of its 2**24 addresses a remote
party sends from, of its translator prefix's /48.
"""

from __future__ import annotations

from tests.test_review68b_transport import admitted
from troth.transport import TcpSettings
from troth.transport.connection import LOOPBACK_SOURCE, source_host, source_network

TRANSLATED = ["64:ff9b::7f00:1", "64:ff9b::7f12:3456", "64:ff9b:1:2:3:4:7f00:5"]


def test_a_translated_loopback_address_is_not_this_hosts_source() -> None:
    """Each NAT64 spelling of a 127.x is a source apart from LOOPBACK_SOURCE, of a network
    apart from it."""
    for host in TRANSLATED:
        assert source_host(host) != LOOPBACK_SOURCE, host
        assert source_network(source_host(host)) != LOOPBACK_SOURCE, host


def test_a_remote_peer_at_a_translated_loopback_address_leaves_local_nodes_their_connections() -> (
    None
):
    """The per-source cap at 2: a remote peer holds two connections from 64:ff9b::7f00:1 and
    64:ff9b::7f00:2; a local node then connects twice from 127.0.0.1: both are accepted (before:
    refused, the remote peer held the loopback source's two)."""
    settings = TcpSettings(max_connections=16, max_connections_per_source=2)
    peers = ["64:ff9b::7f00:1", "64:ff9b::7f00:2", "127.0.0.1", "127.0.0.1"]
    assert admitted(peers, settings) == [True, True, True, True]


def test_translated_loopback_addresses_are_one_source_not_two_to_the_24() -> None:
    """The per-source cap at 2: three connections from three translated 127.x of one prefix:
    the third is refused (one source, as a local user's 127.x are)."""
    settings = TcpSettings(max_connections=16, max_connections_per_source=2)
    peers = ["64:ff9b::7f00:1", "64:ff9b::7f01:2", "64:ff9b::7fff:fffe"]
    assert admitted(peers, settings) == [True, True, False]
