"""A routed message: where it still goes (onward), how to answer (return), and its payload."""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from typing import Final

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError, DecodeProblem, RoutingError
from troth.routing.address import Address, Route, route_from_cbor, route_to_cbor

__all__ = ["Buffer", "RoutedMessage", "stepped"]

_HEADER_LEN: Final = struct.Struct(">H")
Buffer = bytes | bytearray | memoryview
"""Payloads travel as any bytes-like object, so large ones are not copied at every layer."""


_MAX_HEADER: Final = limits.MAX_ROUTE_HEADER_BYTES
CACHED_HEADER: Final = 1024
"""The largest route header the decoder's cache keeps (the routes of a stream: a few hops of
short addresses, ~100-600 bytes). The caches' bound is on entries (1,024 each), and a header
may take `MAX_ROUTE_HEADER_BYTES`, its decoded routes as much again: 1,024 distinct headers
near the limit, anyone's to send, held ~20 MiB in each cache for good (review 48h, routes 1).
A larger header is decoded every time."""
CACHED_HOPS: Final = 6
"""The most addresses (onward and return together) of routes whose header the encoder's cache
keeps: a header of at most ~1.6 KB (as `CACHED_HEADER`; a channel's packet relayed once has 4,
a request in it 3); larger ones are encoded every time."""


def _encode(onward: Route, return_route: Route) -> bytes:
    if len(onward) > limits.MAX_ROUTE_LENGTH or len(return_route) > limits.MAX_ROUTE_LENGTH:
        raise RoutingError(f"a route longer than {limits.MAX_ROUTE_LENGTH} hops")
    header = cbor.encode([route_to_cbor(onward), route_to_cbor(return_route)])
    if len(header) > _MAX_HEADER:
        raise RoutingError(f"route header of {len(header)} bytes")
    return _HEADER_LEN.pack(len(header)) + header


_encode_cached = functools.lru_cache(maxsize=1024)(_encode)  # a stream repeats the same
# routes frame after frame


def _decode(header: bytes) -> tuple[Route, Route]:
    onward, return_route = cbor.expect_array(
        cbor.decode(header, max_bytes=_MAX_HEADER), "routes", 2
    )
    return route_from_cbor(onward), route_from_cbor(return_route)


_decode_cached = functools.lru_cache(maxsize=1024)(_decode)


@dataclass(frozen=True, slots=True, init=False)
class RoutedMessage:
    """A message on its way: onward route, return route, payload (docs/formats.md)."""

    onward: Route
    return_route: Route
    payload: Buffer

    def __init__(self, onward: Route, return_route: Route, payload: Buffer) -> None:
        # frozen: the fields are set through their slots (the generated __init__ goes through
        # object.__setattr__, three times slower; several messages are made per message routed)
        _set_onward(self, onward)
        _set_return(self, return_route)
        _set_payload(self, payload)

    def next_hop(self) -> Address:
        """The first address of the onward route (DecodeError when there is none)."""
        if not self.onward:
            raise DecodeError("message has no onward route")
        return self.onward[0]

    def stepped(self) -> RoutedMessage:
        """Past its first hop (the return route is extended where a message arrives:
        `stepped_in`)."""
        return stepped(self)

    def stepped_in(self, via: Address) -> RoutedMessage:
        """As received from a transport: its onward route unchanged, `via` (the connection it
        came on) prepended to the return route (RoutingError past the route limit, so a long
        return route is dropped here instead of breaking the next hop)."""
        if len(self.return_route) >= limits.MAX_ROUTE_LENGTH:
            raise RoutingError(f"return route longer than {limits.MAX_ROUTE_LENGTH} hops")
        return RoutedMessage(self.onward, (via, *self.return_route), self.payload)

    def header(self) -> bytes:
        """header length (2) || CBOR [onward, return]; the payload follows as it is."""
        onward, return_route = self.onward, self.return_route
        if len(onward) + len(return_route) <= CACHED_HOPS:  # `_encode_header`, inline: one
            return _encode_cached(onward, return_route)  # call less per message sent
        return _encode(onward, return_route)

    def encode(self) -> bytes:
        """header || payload, as it travels in a transport frame."""
        return self.header() + self.payload

    @classmethod
    def decode(
        cls, data: bytes | memoryview, *, max_size: int = limits.MAX_TRANSPORT_FRAME
    ) -> RoutedMessage:
        """Parse a message; its payload is a view of `data` (DecodeError when malformed)."""
        onward, return_route, end = _parse(data, max_size)
        return RoutedMessage(onward, return_route, memoryview(data)[end:])

    @classmethod
    def arrived(
        cls, data: bytes | memoryview, via: Address, *, max_size: int = limits.MAX_TRANSPORT_FRAME
    ) -> RoutedMessage:
        """`decode(data).stepped_in(via)` in one step (what a transport or a channel does with
        each message it brings in): DecodeError when malformed, RoutingError when the return
        route is already at the route limit."""
        onward, return_route, end = _parse(data, max_size)
        if len(return_route) >= limits.MAX_ROUTE_LENGTH:
            raise RoutingError(f"return route longer than {limits.MAX_ROUTE_LENGTH} hops")
        return RoutedMessage(onward, (via, *return_route), memoryview(data)[end:])


_set_onward = vars(RoutedMessage)["onward"].__set__  # the slot descriptors
_set_return = vars(RoutedMessage)["return_route"].__set__
_set_payload = vars(RoutedMessage)["payload"].__set__


def stepped(message: RoutedMessage) -> RoutedMessage:
    """`message.stepped()` (the router's hot path: no method lookup)."""
    return RoutedMessage(message.onward[1:], message.return_route, message.payload)


def _parse(data: bytes | memoryview, max_size: int) -> tuple[Route, Route, int]:
    """(onward, return route, where the payload starts) of an encoded message."""
    size = len(data)
    if size > max_size:
        raise DecodeError(
            f"message of {size} bytes over the limit of {max_size}", DecodeProblem.OVER_LIMIT
        )
    if size < _HEADER_LEN.size:
        raise DecodeError("message too short")
    (length,) = _HEADER_LEN.unpack_from(data)
    end = _HEADER_LEN.size + length
    if end > size:
        raise DecodeError("message header past the end")
    header = data[_HEADER_LEN.size : end]
    if type(header) is not bytes:
        header = bytes(header)
    # `_decode_header`, inline (one call less per message that arrives)
    decoded = _decode_cached(header) if length <= CACHED_HEADER else _decode(header)
    return decoded[0], decoded[1], end
