"""Addresses and routes (docs/protocols.md, "Routing").

An address is a kind and a value; a route is the list of addresses a message still has to
travel. Text form: `/tcp/127.0.0.1:4000/relay/agent-b/service/echo`.

Kinds: `tcp` (host:port of a node to connect to), `service` (a named service of a node),
`relay` (a named relay on a relay node), `worker` (a node-local address: a connection, a
channel endpoint, a waiting client; random and unguessable).
"""

from __future__ import annotations

import operator
import re
from typing import TYPE_CHECKING, Any, Final

from troth import limits
from troth.errors import DecodeError, RoutingError

__all__ = [
    "KINDS",
    "Address",
    "Route",
    "format_route",
    "parse_route",
    "route_from_cbor",
    "route_to_cbor",
]

KINDS: Final = frozenset({"tcp", "service", "relay", "worker"})
_VALUE = re.compile(r"[A-Za-z0-9._:\-\[\]*]+")


class Address(tuple[str, str]):
    """One hop: a kind (tcp, service, relay, worker) and a value (RoutingError if invalid).

    A tuple underneath, (kind, value), so hashing and comparing are the tuple's own, in C:
    addresses are dictionary keys on every hop (worker tables, allow-sets, the header
    caches), a few dozen look-ups per service round trip. (It also equals the plain tuple
    (kind, value), which nothing relies on.)"""

    __slots__ = ()

    def __new__(cls, kind: str, value: str) -> Address:
        if kind not in KINDS:
            raise RoutingError(f"unknown address kind {kind!r}")
        if not 0 < len(value) <= limits.MAX_ADDRESS_TEXT or not _VALUE.fullmatch(value):
            raise RoutingError(f"invalid {kind} address {value!r}")
        return tuple.__new__(cls, (kind, value))

    def __getnewargs__(self) -> tuple[str, str]:
        return (self[0], self[1])  # copy and pickle call __new__(kind, value)

    if TYPE_CHECKING:

        @property
        def kind(self) -> str:
            """tcp, service, relay or worker."""
            ...

        @property
        def value(self) -> str:
            """The address within its kind."""
            ...

    else:  # the tuple's items, read in C (a Python property would cost a call per read)
        kind = property(operator.itemgetter(0), doc="tcp, service, relay or worker.")
        value = property(operator.itemgetter(1), doc="The address within its kind.")

    def __repr__(self) -> str:
        return f"Address(kind={self[0]!r}, value={self[1]!r})"

    def __str__(self) -> str:
        return f"/{self[0]}/{self[1]}"

    def host_port(self) -> tuple[str, int]:
        """(host, port) of a `tcp` address (RoutingError for any other)."""
        if self.kind != "tcp":
            raise RoutingError(f"{self} is not a tcp address")
        host, _, port = self.value.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise RoutingError(f"{self} is not host:port")
        return host.strip("[]"), int(port)


Route = tuple[Address, ...]


def parse_route(text: str) -> Route:
    """`/kind/value/...` to a route (RoutingError for a bad address or too many hops)."""
    parts = [p for p in text.strip().split("/") if p]
    if not parts or len(parts) % 2:
        raise RoutingError(f"a route is /kind/value pairs: {text!r}")
    route = tuple(Address(parts[i], parts[i + 1]) for i in range(0, len(parts), 2))
    if len(route) > limits.MAX_ROUTE_LENGTH:
        raise RoutingError(f"more than {limits.MAX_ROUTE_LENGTH} hops")
    return route


def format_route(route: Route) -> str:
    """A route in its text form."""
    return "".join(str(a) for a in route)


def route_to_cbor(route: Route) -> list[list[str]]:
    """A route as CBOR-ready [[kind, value], ...]."""
    return [[a.kind, a.value] for a in route]


def route_from_cbor(value: Any) -> Route:
    """A decoded CBOR route (DecodeError when it is not one)."""
    if not isinstance(value, list) or len(value) > limits.MAX_ROUTE_LENGTH:
        raise DecodeError("route: expected at most 16 addresses")
    try:
        return tuple(Address(kind, text) for kind, text in value)
    except (ValueError, TypeError, RoutingError) as exc:
        raise DecodeError(f"route: {exc}") from None
