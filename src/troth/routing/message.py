"""A routed message: where it still goes (onward), how to answer (return), and its payload."""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from typing import Final

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError, RoutingError
from troth.routing.address import Address, Route, route_from_cbor, route_to_cbor

__all__ = ["Buffer", "RoutedMessage"]

_HEADER_LEN: Final = struct.Struct(">H")
Buffer = bytes | bytearray | memoryview
"""Payloads travel as any bytes-like object, so large ones are not copied at every layer."""


_MAX_HEADER: Final = 8192


@functools.lru_cache(maxsize=1024)  # a stream repeats the same routes frame after frame
def _encode_header(onward: Route, return_route: Route) -> bytes:
    if len(onward) > limits.MAX_ROUTE_LENGTH or len(return_route) > limits.MAX_ROUTE_LENGTH:
        raise RoutingError(f"a route longer than {limits.MAX_ROUTE_LENGTH} hops")
    header = cbor.encode([route_to_cbor(onward), route_to_cbor(return_route)])
    if len(header) > _MAX_HEADER:
        raise RoutingError(f"route header of {len(header)} bytes")
    return _HEADER_LEN.pack(len(header)) + header


@functools.lru_cache(maxsize=1024)
def _decode_header(header: bytes) -> tuple[Route, Route]:
    onward, return_route = cbor.expect_array(
        cbor.decode(header, max_bytes=_MAX_HEADER), "routes", 2
    )
    return route_from_cbor(onward), route_from_cbor(return_route)


@dataclass(frozen=True, slots=True)
class RoutedMessage:
    """A message on its way: onward route, return route, payload (docs/formats.md)."""

    onward: Route
    return_route: Route
    payload: Buffer

    def next_hop(self) -> Address:
        """The first address of the onward route (DecodeError when there is none)."""
        if not self.onward:
            raise DecodeError("message has no onward route")
        return self.onward[0]

    def stepped(self) -> RoutedMessage:
        """Past its first hop (the return route is extended where a message arrives:
        `stepped_in`)."""
        return RoutedMessage(self.onward[1:], self.return_route, self.payload)

    def stepped_in(self, via: Address) -> RoutedMessage:
        """As received from a transport: its onward route unchanged, `via` (the connection it
        came on) prepended to the return route (RoutingError past the route limit, so a long
        return route is dropped here instead of breaking the next hop)."""
        if len(self.return_route) >= limits.MAX_ROUTE_LENGTH:
            raise RoutingError(f"return route longer than {limits.MAX_ROUTE_LENGTH} hops")
        return RoutedMessage(self.onward, (via, *self.return_route), self.payload)

    def header(self) -> bytes:
        """header length (2) || CBOR [onward, return]; the payload follows as it is."""
        return _encode_header(self.onward, self.return_route)

    def encode(self) -> bytes:
        """header || payload, as it travels in a transport frame."""
        return self.header() + self.payload

    @classmethod
    def decode(
        cls, data: bytes | memoryview, *, max_size: int = limits.MAX_TRANSPORT_FRAME
    ) -> RoutedMessage:
        """Parse a message; its payload is a view of `data` (DecodeError when malformed)."""
        if len(data) > max_size:
            raise DecodeError(f"message of {len(data)} bytes over the limit of {max_size}")
        if len(data) < _HEADER_LEN.size:
            raise DecodeError("message too short")
        (length,) = _HEADER_LEN.unpack_from(data)
        end = _HEADER_LEN.size + length
        if end > len(data):
            raise DecodeError("message header past the end")
        onward, return_route = _decode_header(bytes(data[_HEADER_LEN.size : end]))
        return cls(onward, return_route, memoryview(data)[end:])
