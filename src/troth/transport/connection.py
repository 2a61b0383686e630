"""What every transport connection shares (TCP, in-memory): its worker address, its allow-set
(a connection is the Source of what arrives on it), its origin for per-source limits, and how
an arriving frame body becomes a routed message."""

from __future__ import annotations

import abc
import contextlib
import ipaddress
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, Protocol, TypeVar

from troth.crypto import sha256
from troth.errors import RoutingError
from troth.routing import (
    Address,
    AllowSet,
    AllowSetSource,
    Route,
    RoutedMessage,
    Router,
    new_worker_address,
)

__all__ = [
    "IPV4_NETWORK_PREFIX",
    "IPV6_NETWORK_PREFIX",
    "IPV6_SOURCE_PREFIX",
    "LOOPBACK_SOURCE",
    "Connection",
    "ConnectionTable",
    "Listener",
    "host_tag",
    "peer_host",
    "relayed_network",
    "source_host",
    "source_network",
]

IPV6_SOURCE_PREFIX: Final = 64
"""The bits of an IPv6 peer address that name its source for the per-source limits: a host on
an IPv6 network is given a /64 and may send from any address in it (review 28a, sources 1)."""

LOOPBACK_SOURCE: Final = "loopback"
"""The one source (and network) of every loopback address, 127.0.0.0/8 and ::1 (an IPv4-mapped
127.x too): each is this host (RFC 1122 section 3.2.1.3; Linux answers on all of 127.0.0.0/8
with no configuration), so a local user sends from whichever it likes, and counted as addresses
it was 2**24 sources of 65,536 networks (review 68b, transport 2). A NAT64-translated 127.x is
not this host but a remote peer behind a translator: a source apart (`_TRANSLATED_LOOPBACK`)."""
_TRANSLATED_LOOPBACK: Final = 104
"""The bits of a NAT64 address holding a 127.x that name its source: its translator's /96 and
127.0.0.0/8, one source for all of them. No local user sends from one (the kernel gives a local
client 127.x, ::1 or ::ffff:127.x; a NAT64 address takes root to assign) and RFC 6052 forbids
the well-known prefix to carry a non-global address: counted as LOOPBACK_SOURCE, a remote peer
spent the source the nodes on this machine share (review 70e, sources 1)."""

IPV4_NETWORK_PREFIX: Final = 24
"""The bits of an IPv4 source address that name its network for the TCP connection table's
fair share between networks (`source_network`: review 48h, sources 1)."""
IPV6_NETWORK_PREFIX: Final = 48
"""The bits of an IPv6 source's /64 that name its network, as `IPV4_NETWORK_PREFIX`: a site is
given a /48 (65,536 /64s, each a source of its own: review 48h, sources 1)."""

_NAT64_PREFIX: Final = ipaddress.IPv6Network("64:ff9b::/96")
"""The NAT64 well-known prefix (RFC 6052): an IPv4 client reaches an IPv6-only node through a
stateless translator (SIIT, RFC 7915) from its IPv4 address in it (review 29b, sources 3)."""
_SIXTOFOUR: Final = ipaddress.IPv6Network("2002::/16")
"""6to4 (RFC 3056): a client's IPv4 address in bits 16-47; its source is its /48, its network
the /40 of its IPv4 address's /24 (review 67w, transport 1)."""
_TEREDO: Final = ipaddress.IPv6Network("2001::/32")
"""Teredo (RFC 4380 section 4): the client's IPv4 address, bit-inverted, in the last 32 bits;
its source is 2001:0:C::/64 (C the client's address, the server, flags and port dropped), its
network the /56 of C's /24 (review 67w, transport 1)."""
_NAT64_LOCAL_USE: Final = ipaddress.IPv6Network("64:ff9b:1::/48")
"""The prefix RFC 8215 sets apart for translators an operator runs, each a network-specific
prefix of it (RFC 6052: a /96 has the IPv4 address in the last 32 bits, as the well-known
prefix; a /48, /56 or /64 elsewhere, the zero suffix last): every IPv4 client of a node behind
one was one source, its /64 (review 62f, sources 1; review 62p, sources 1)."""

_HOST_KEY = os.urandom(16)
"""Keys this process's host tags: stable per host while it runs, unlinkable elsewhere."""
_TAGGED = re.compile(r"([a-z]+)-h([0-9a-f]{8})-[0-9a-f]{16}")


NETWORK_LETTERS: Final = 11
"""The letters (a-z) a relay puts after an accepted connection's kind in its address (`/worker/
tcp<letters>-h<tag>-<random>`), a keyed hash of the host's network (an IPv4 /24, an IPv6 /48):
about 51 bits, where the four hex digits of review 56m's tag were 16, so one relay's networks
shared budgets in pairs past a few hundred, and a party with an IPv6 /32 (65,536 /48s) shared
most networks' (review 56s, tags 1). Letters, since a node of before reads the kind as any
letters (`[a-z]+`) and the tag whole."""


def host_tag(address: Address) -> str | None:
    """The host tag of a connection address a node gave a connection it accepted (`/worker/
    <kind>-h<tag>-<random>`: `_accepted_address`), None for any other address."""
    tagged = _TAGGED.fullmatch(address.value) if address.kind == "worker" else None
    return None if tagged is None else tagged.group(2)


def _network_letters(address: Address) -> str | None:
    """The NETWORK_LETTERS naming the host's network in a tagged connection address (None
    where the relay named none: its kind, `tcp`, alone before the tag)."""
    tagged = _TAGGED.fullmatch(address.value) if address.kind == "worker" else None
    kind = None if tagged is None else tagged.group(1)
    return kind[-NETWORK_LETTERS:] if kind and len(kind) > NETWORK_LETTERS else None


_OF_NETWORK: Final = " of network "


def relayed_network(source_key: str) -> str | None:
    """The network a relayed sender's key (`Connection.relayed_sender`'s) names, by the relay's
    letters for it; None for any other key, and for a sender whose relay named no network (a
    relay of before: its tag is the host's alone, so the host is its own network, as before
    review 56m; review 56w, tags 1: its tag's first four hex digits, read as the network, put
    every network's hosts in 65,536 buckets, and a party's /48 behind it in most of them)."""
    relay, via, tagged = source_key.rpartition(" via host ")
    _, of, letters = tagged.partition(_OF_NETWORK)
    return f"{relay} via network {letters}" if via and of else None


def peer_host(peername: tuple[Any, ...]) -> str:
    """The host of an accepted socket's peername (`getpeername()`), with its zone when it has
    one: CPython gives an IPv6 peer as (host, port, flowinfo, scope_id), the host without its
    zone (`('fe80::b', 52917, 0, 3)`, seen on Linux with Python 3.11), so every link's
    link-local peers were one source, `fe80::/64`, whatever `source_host` did with a zone
    (review 68b, transport 1: review 29b, sources 2, tested a host string the socket never
    gives). The zone is the interface's name, or its index when it has none now."""
    host = str(peername[0])
    scope = peername[3] if len(peername) > 3 else 0
    if not isinstance(scope, int) or not scope or "%" in host:
        return host
    try:
        zone = socket.if_indextoname(scope)
    except (OSError, OverflowError, ValueError):  # gone since, or no index at all
        zone = str(scope)
    return f"{host}%{zone}"


def source_host(host: str) -> str:
    """What the per-source limits count `host` (a peer's IP address, or a name) as: every
    loopback address (127.0.0.0/8, ::1, an IPv4-mapped 127.x) as LOOPBACK_SOURCE, one source
    of one network (review 68b, transport 2: each was a source of its own, so a local user held
    the per-source limits 2**24 times over); any other IPv4
    address as it is, an IPv6 address as its /64 network (`IPV6_SOURCE_PREFIX`: one host may
    use every address in it; review 28a, sources 1), with its zone when it has one (a
    link-local peer, `fe80::1%eth0`: every link's is fe80::/64, one link's peers are not
    another's; review 29b, sources 2), an IPv4-mapped one or one in the NAT64 well-known
    prefix (`64:ff9b::/96`, an IPv4 client through a translator: review 29b, sources 3) as
    its IPv4 address, and so is one in RFC 8215's local-use prefix (`64:ff9b:1::/48`, a
    translator the operator runs, a /96 of it: review 62f, sources 1) unless its last 32 bits
    are no IPv4 source (in 0.0.0.0/8, or x.0.0.0): the zero suffix of a /48, /56 or /64 prefix
    there (RFC 8215 reserves a /48 for such), which has the IPv4 address elsewhere, the whole
    address is the client then (review 62p, sources 1: every IPv4 client was `0.0.0.0`), and
    a translated 127.x (a remote peer, not this host: review 70e, sources 1) as the /104 of its
    translator's prefix holding 127.0.0.0/8 (`_TRANSLATED_LOOPBACK`), one source apart; a
    6to4 one (`2002::/16`, RFC 3056) as its /48 and a Teredo one (`2001::/32`, RFC 4380: the
    client's address, bit-inverted, in its last 32 bits) as that client address alone, each a
    source apart from the IPv4 host it names, of a network per IPv4 /24 (`source_network`;
    review 67p, transport 1: each IPv4 address of a /24 was a 6to4 /48 of its own network, and
    a Teredo client wrote 65,536 /48s, the server's address, for its one; review 67w,
    transport 1: counted as the IPv4 host itself, whoever runs the node's return relay spent
    any IPv4 host's quota); anything else (a host name) as it is."""
    text, _, zone = host.partition("%")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv4Address):
        return _ipv4_source(address)
    if address.is_loopback:
        return LOOPBACK_SOURCE
    if address.ipv4_mapped is not None:
        return _ipv4_source(address.ipv4_mapped)
    if address.sixtofour is not None:  # its /48, a namespace apart from the IPv4 host it names
        return str(ipaddress.IPv6Network((int(address) >> 80 << 80, 48)))
    if address.teredo is not None:  # the client's address alone (the server it writes dropped)
        client = int(address.teredo[1])
        return str(ipaddress.IPv6Network((int(_TEREDO.network_address) | client << 64, 64)))
    if address in _NAT64_PREFIX or address in _NAT64_LOCAL_USE:  # RFC 6052's /96: the IPv4
        # address is the last 32 bits
        v4 = int(address) & 0xFFFFFFFF
        if address in _NAT64_LOCAL_USE and not (v4 >> 24 and v4 & 0xFFFFFF):  # (review 62p,
            return str(ipaddress.IPv6Network(address))  # sources 1) a shorter prefix's
        if v4 >> 24 == 127:  # a remote peer, not this host: one source apart (70e, sources 1)
            bits = 128 - _TRANSLATED_LOOPBACK
            return str(ipaddress.IPv6Network((int(address) >> bits << bits, _TRANSLATED_LOOPBACK)))
        return _ipv4_source(ipaddress.IPv4Address(v4))
    network = str(ipaddress.IPv6Network((address, IPV6_SOURCE_PREFIX), strict=False))
    return f"{network}%{zone}" if zone else network


def _ipv4_source(address: ipaddress.IPv4Address) -> str:
    """An IPv4 source: its address, LOOPBACK_SOURCE for every one of 127.0.0.0/8."""
    return LOOPBACK_SOURCE if address.is_loopback else str(address)


def source_network(host: str) -> str:
    """The network a source (`source_host`'s answer) belongs to, for the connection table's
    fair share between networks: an IPv4 address's /24 (`IPV4_NETWORK_PREFIX`), an IPv6 /64's
    /48 (`IPV6_NETWORK_PREFIX`), with its zone when it has one, a tunnelled IPv4 source (a 6to4
    /48, a Teredo client's /64) the prefix holding its IPv4 address's /24 (a /40, a /56: review
    67w, transport 1); anything else (a host name) as it is. One party holds a whole network's
    sources as cheaply as one of them (a /48's 65,536 /64s): review 48h, sources 1."""
    text, _, zone = host.partition("%")
    try:  # an IPv4 address (most sources) masked as an integer: its /24 without building
        v4 = int(ipaddress.IPv4Address(text))  # networks (~10 us an accepted connection)
    except ValueError:
        pass
    else:
        mask = -1 << (32 - IPV4_NETWORK_PREFIX)
        masked = f"{ipaddress.IPv4Address(v4 & mask)}/{IPV4_NETWORK_PREFIX}"
        return f"{masked}%{zone}" if zone else masked
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return host
    prefix = IPV4_NETWORK_PREFIX if network.version == 4 else IPV6_NETWORK_PREFIX
    if isinstance(network, ipaddress.IPv6Network):  # a tunnelled IPv4 source: its /24's
        if network.subnet_of(_SIXTOFOUR):
            prefix = _SIXTOFOUR.prefixlen + IPV4_NETWORK_PREFIX
        elif network.subnet_of(_TEREDO):
            prefix = _TEREDO.prefixlen + IPV4_NETWORK_PREFIX
    if network.prefixlen > prefix:
        network = network.supernet(new_prefix=prefix)
    return f"{network}%{zone}" if zone else str(network)


def _accepted_address(kind: str, host: str, network: str | None = None) -> Address:
    """An accepted connection's worker address, tagged with its peer's source (`host`, as
    `source_host` gives it: an IPv6 peer's /64): a node that relays a message puts this address
    in the return route, so the node it relays to can count what one host sends through the
    relay as one source, however many connections (and addresses of its /64) that host uses
    (`Connection.origin`; review 29b, sources 1). NETWORK_LETTERS after the kind name the
    host's network (`source_network`), so that node counts one network's hosts as one where it
    counts networks, as it does those that reach it directly (its hosted authority's enroll
    budgets: review 56m, relayed budgets 1; in letters, 51 bits: review 56s, tags 1); the tag
    (eight hex digits) is the host's alone, 32 bits (review 56s, tags 2: review 56m's four were
    the /64s of a /48 in pairs). A node of before reads the kind as any letters, the tag whole,
    as before. `network`: `source_network(host)` when the caller has it."""
    network = source_network(host) if network is None else network
    digest = sha256(_HOST_KEY + b"network " + network.encode())
    number, letters = int.from_bytes(digest[:8], "big"), []
    for _ in range(NETWORK_LETTERS):
        number, letter = divmod(number, 26)
        letters.append(chr(ord("a") + letter))
    tag = sha256(_HOST_KEY + host.encode()).hex()[:8]
    return Address("worker", f"{kind}{''.join(letters)}-h{tag}-{os.urandom(8).hex()}")


@dataclass
class Listener:
    """What a listening socket's connections may reach by default."""

    addresses: frozenset[Address] = frozenset()
    kinds: frozenset[str] = frozenset()  # every address of these kinds (e.g. "relay")
    server: Any = None
    """The listening server (an asyncio.Server for TCP), closed with the transport."""


class Connection(AllowSetSource):
    """A connection as a router sees it: a worker address and a message Source."""

    def __init__(
        self,
        *,
        kind: str,
        outgoing: bool,
        listener: Listener | None,
        peer: str,
        max_reply_paths: int,
    ) -> None:
        self.kind = kind
        self.outgoing = outgoing
        self.peer = peer
        """The peer's host:port."""
        self.host = source_host(peer.rpartition(":")[0])
        """The peer's host as every per-source limit counts it (`source_host`: its IP
        address for an accepted connection, an IPv6 peer's /64 network)."""
        self.network = "" if outgoing else source_network(self.host)
        """The network of an accepted connection's source (`source_network`), as the
        connection table's fair share between networks counts it."""
        self.address = (
            new_worker_address(kind)
            if outgoing or not self.host
            else _accepted_address(kind, self.host, self.network)
        )
        self.name = f"{kind} {peer} ({'out' if outgoing else 'in'})"
        self._use(  # what messages arriving on this connection may reach
            AllowSet(
                listener.addresses if listener else frozenset(),
                listener.kinds if listener else frozenset(),
                max_reply_paths=max_reply_paths,
            )
        )
        self.frames_sent = 0
        self.progress = 0
        """Authenticated progress seen on it so far (`progressed`)."""

    def progressed(self) -> None:
        """What arrived on this connection authenticated (a handshake step that verified the
        peer, a channel's transport frame), or a relay owner sent a frame back over it: what
        keeps it from idling out at a node (`TcpTransport.authenticated_idle`; review 50e,
        idle 1: junk does not)."""
        self.progress += 1
        if self.progress == 1:
            self._proved()

    def _proved(self) -> None:
        """It brought its first frame, or made its first progress: a transport that keeps the
        connections that have not apart hears of it (`TcpTransport.proved`)."""

    def set_peer(self, host: str, port: int) -> None:
        """The accepted peer's address, once known."""
        self.host = source_host(host)
        self.peer = f"{host}:{port}"
        self.name = f"{self.kind} {self.peer} ({'out' if self.outgoing else 'in'})"
        if not self.outgoing:  # before it is registered (the transport admits it next); the
            # tag by the source, as the per-source limits here count it: a relayed node counts
            # what comes through the relay by it (review 29b, sources 1)
            self.network = source_network(self.host)
            self.address = _accepted_address(self.kind, self.host, self.network)

    def origin(self, return_route: Route) -> str:
        """Who sent a message with this return route: the peer's host for an accepted
        connection; for one this node opened (to a relay), this connection and the relay's
        connection to the sender (which the relay itself put in the route) — by the sender's
        host tag when the relay's address carries one, so one host's many connections to the
        relay are one source here."""
        if not self.outgoing:
            return f"{self.kind} {self.host}"
        via = return_route[1] if len(return_route) > 1 else None
        if via is None:
            return str(self.address)
        return self.relayed_sender(return_route) or f"{self.address} via {via}"

    def relayed_sender(self, return_route: Route) -> str | None:
        """For a connection this node opened (to a relay), the host behind the relay that sent
        a message with `return_route`, as `origin` names it, when the relay tagged its own
        connection to that host in the route (None otherwise: an accepted connection, or a
        route whose second hop the relay did not tag)."""
        via = return_route[1] if self.outgoing and len(return_route) > 1 else None
        tag = host_tag(via) if via is not None else None
        if tag is None or via is None:
            return None
        letters = _network_letters(via)
        network = "" if letters is None else f"{_OF_NETWORK}{letters}"
        return f"{self.address} via host {tag}{network}"

    # -- frames ----------------------------------------------------------------------------------

    def arrived(self, body: bytes) -> RoutedMessage:
        """A frame body from the peer as a routed message, this connection at the front of its
        return route (TrothError when it is malformed: the caller drops it)."""
        return RoutedMessage.arrived(body, self.address)


class _Open(Protocol):
    address: Address
    peer: str
    kind: str
    outgoing: bool

    async def send(self, message: RoutedMessage) -> None: ...


C = TypeVar("C", bound=_Open)


class ConnectionTable(abc.ABC, Generic[C]):
    """What every transport keeps: its open connections (by worker address, and the outgoing
    ones by host:port), and sending to `/tcp/host:port` over them."""

    router: Router
    lost: list[Callable[[Address], None]]
    """Called with the worker address of every connection that closed (its channels die),
    and an outgoing one's `/tcp/host:port` (the handshakes opened on it fail: `_drop`)."""
    _all: set[C]
    _connections: dict[str, C]

    @abc.abstractmethod
    async def connect(self, host: str, port: int) -> C:
        """The open connection to host:port, or a new one."""

    def connection(self, address: Address) -> C | None:
        """The open connection whose worker address is `address`."""
        return next((c for c in self._all if c.address == address), None)

    def connections(self) -> list[C]:
        """Every open connection."""
        return list(self._all)

    async def send(self, address: Address, message: RoutedMessage) -> None:
        """Transport interface: send over the connection to a `/tcp/host:port` address."""
        host, port = address.host_port()
        connection = await self.connect(host, port)
        await connection.send(message)

    def _drop(self, connection: C) -> None:
        """Forget a closed connection (its worker address is released). The `lost` hooks
        are told its worker address, and, for the outgoing connection to `host:port` that
        closed, that address too (`/tcp/host:port`): what was sent to it before any answer
        came back over the connection, a handshake's message 1, went over this one, and
        its answer cannot come now (review 48h, sources 2: a node that refused the
        connection closed it as it accepted it, and the handshake waited its whole timeout,
        10 s, told that nothing answered there)."""
        self._all.discard(connection)
        self.router.unregister(connection.address)
        current = self._connections.get(connection.peer) is connection
        if current:
            del self._connections[connection.peer]
        lost = [connection.address]
        if connection.outgoing and current:  # (not once a new connection took its place)
            with contextlib.suppress(RoutingError):  # (no address: nothing went to one)
                lost.append(Address(connection.kind, connection.peer))
        for address in lost:
            for hook in self.lost:
                hook(address)
