"""Addresses and routes (docs/protocols.md, "Routing").

An address is a kind and a value; a route is the list of addresses a message still has to
travel. Text form: `/tcp/127.0.0.1:4000/relay/agent-b/service/echo`.

Kinds: `tcp` (host:port of a node to connect to), `service` (a named service of a node),
`relay` (a named relay on a relay node), `worker` (a node-local address: a connection, a
channel endpoint, a waiting client; random and unguessable).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

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


@dataclass(frozen=True, slots=True)
class Address:
    """One hop: a kind (tcp, service, relay, worker) and a value (RoutingError if invalid)."""

    kind: str
    value: str
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise RoutingError(f"unknown address kind {self.kind!r}")
        if not 0 < len(self.value) <= limits.MAX_ADDRESS_TEXT or not _VALUE.fullmatch(self.value):
            raise RoutingError(f"invalid {self.kind} address {self.value!r}")
        # addresses are dictionary keys on every hop: hash once (the generated hash would
        # rebuild a tuple each time)
        object.__setattr__(self, "_hash", hash((self.kind, self.value)))

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:
        return f"/{self.kind}/{self.value}"

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
