"""Review 70e (second review of 69b's loopback source and the per-source limits): attacks that
did not work. Each test is a real attempt and fails if the defence it names breaks.

Every limit a node keys by where a peer comes from reads one key, the accepted connection's
`Connection.host` (`source_host` of `peer_host` of the socket's peername), or what is derived
from it: the transport's connection caps, queued and routing bytes and holds (`host`,
`network`), the channel manager's half-open slots, channels per source and opening rates (its
`origin`, `source_network_of`), the hosted authority's enroll budgets (`source_network_of` of
the channel's source key), and, past a relay, the host tag and network letters the relay
wrote from the same `host` (`relayed_sender`, notice budgets). Reassembly, MCP sessions and
feed pages count members, not addresses; the accept-error log is one limiter per node; the
control socket admits the node's own user only. So the attempts below go at that one key.

IPv6 per /64, not per address (the brief asked to decide it): a host given a /64 sends from
any of its 2**64 addresses (SLAAC privacy addresses, RFC 8981, change by themselves), so per
address one host is as many sources as it likes, as 127.0.0.0/8 made a local user (review 28a,
sources 1). The price, a LAN's hosts sharing a /64 sharing one source, is an IPv4 NAT's; a
site's /64s (RFC 6177: a /48 or /56 each) are weighed between networks (/48), as a /24's
addresses are. Kept.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.load import Nodes, closed_by_node, connect, nodes_fixture  # noqa: F401
from tests.support.sources import NODE_SITE
from tests.test_review62f_refuted import _Socket
from tests.test_review68b_transport import Peername, admitted, admitted_sockets
from troth.node.channel_sources import source_network_of
from troth.routing import Address
from troth.transport import TcpSettings
from troth.transport.connection import LOOPBACK_SOURCE, Connection, host_tag, source_host

ROOT = Path(__file__).resolve().parent.parent
TWO = TcpSettings(max_connections=16, max_connections_per_source=2)


def _keys(peer: str) -> tuple[str, str, str | None]:
    """What the per-source limits key a connection accepted from `peer` (`host:port`) by: its
    origin (half-open slots, channels, opening rates), its network (opening rates, enroll
    budgets) and the host tag a relay writes for it (a relayed node's keys)."""
    accepted = Connection(kind="tcp", outgoing=False, listener=None, peer=peer, max_reply_paths=8)
    origin = accepted.origin((accepted.address, Address("worker", "x.dec")))
    return origin, source_network_of(origin), host_tag(accepted.address)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("198.51.100.7:1", "::ffff:198.51.100.7:2"),  # an IPv4 peer on a dual-stack listener
        ("198.51.100.7:1", "::FFFF:C633:6407:2"),  # odd spellings of it
        ("198.51.100.7:1", "64:ff9b::c633:6407:2"),  # through a NAT64 translator
        ("2001:db8:1:2::1:1", "2001:db8:1:2:ffff:eeee:dddd:cccc:2"),  # one host's /64
        ("2001:db8:1:2::1:1", "2001:DB8:1:2:0:0:0:9:2"),
        ("fe80::1%eth0:1", "fe80::2%eth0:2"),  # one link's link-local peers
        ("127.0.0.1:1", "0:0:0:0:0:0:0:1:2"),  # a local user, however it is spelled
        ("127.0.0.1:1", "::1%lo:2"),
    ],
)
def test_two_spellings_of_one_source_key_every_limit_alike(one: str, other: str) -> None:
    """Tried: one host under two spellings, to hold the per-source limits twice. Its origin,
    network and relay host tag are the same either way (the tag is keyed per process, so
    compared within it)."""
    assert _keys(one) == _keys(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("fe80::1%eth0:1", "fe80::1%eth1:1"),  # the same address on two links: two peers
        ("198.51.100.7:1", "198.51.100.8:1"),
        ("2001:db8:1:2::1:1", "2001:db8:1:3::1:1"),  # two /64s of one site: two sources
        ("127.0.0.1:1", "64:ff9b::7f00:1:1"),  # a translated 127.x is remote (70e, sources 1)
    ],
)
def test_two_sources_stay_two(one: str, other: str) -> None:
    """Tried: a peer spelled to land on another's key (to spend its limits). Different
    sources keep different origins and host tags."""
    first, second = _keys(one), _keys(other)
    assert first[0] != second[0]
    assert first[2] != second[2]


def test_peers_whose_address_the_socket_lost_do_not_spend_a_real_source() -> None:
    """Tried: connections reset before asyncio asked their peername (None: `("?", 0)`), two at
    the per-source cap, to spend someone's share. They share a source of their own, `?`: the
    local user then connects twice, both accepted; a third unnamed one is refused."""
    sockets = [Peername(None), Peername(None), _Socket("127.0.0.1"), _Socket("::1")]
    assert admitted_sockets([*sockets, Peername(None)], TWO) == [True] * 4 + [False]
    assert source_host("?") not in {LOOPBACK_SOURCE, "127.0.0.1"}


def test_a_zone_on_a_remote_mapped_address_makes_no_source_of_its_own() -> None:
    """Tried: an IPv4 peer on a dual-stack listener with a scope id (`peer_host` appends a zone)
    against the per-source cap of 2: one source with its unzoned spellings, the third refused."""
    peers = ["::ffff:203.0.113.5%eth0", "203.0.113.5", "::ffff:203.0.113.5%7"]
    assert admitted(peers, TWO) == [True, True, False]


def test_the_test_seam_ships_in_no_package() -> None:
    """Tried: to find the seam naming loopback addresses apart in what `pip install troth`
    installs. The wheel holds src/troth only, and the seam's sitecustomize lies outside it: a
    node gets it only with the checkout's tests/support/loopback_site first on its PYTHONPATH,
    which whoever sets has any code of theirs run in the node already."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert wheel == ["src/troth"]
    assert not NODE_SITE.is_relative_to(ROOT / "src")
    assert not list((ROOT / "src").rglob("sitecustomize.py"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs 127.0.0.0/8")
def test_a_node_process_started_as_a_user_starts_it_counts_loopback_as_one_source(
    nodes: Nodes,
) -> None:
    """Tried: a local user against a real node process started without the test seam (the
    environment a user starts it with), its per-source cap at 2, from 127.0.0.2, 127.0.0.3,
    127.1.0.4 and 127.1.0.5: the node closes two of the four (one source). Four connections,
    nothing timed: in the main run, not the serial load run (75a citime)."""
    run("node", "create", "solo")
    node = nodes.start(
        "solo",
        listen=True,
        environment={"TROTH_TCP_MAX_CONNECTIONS_PER_SOURCE": "2"},
        loopback_apart=False,
    )
    sockets = [connect(source, node) for source in ["127.0.0.2", "127.0.0.3", "127.1.0.4"]]
    sockets.append(connect("127.1.0.5", node))
    try:
        # the node refuses at accept: two closed as they come (waited for until then), and
        # no more than two (the others still open a while after)
        assert closed_by_node(sockets, timeout=3, at_least=2) == 2
        assert closed_by_node(sockets, timeout=0.5) == 2
    finally:
        for sock in sockets:
            sock.close()
