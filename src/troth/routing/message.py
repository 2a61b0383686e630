"""A routed message: where it still goes (onward), how to answer (return), and its payload."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError
from troth.routing.address import Address, Route, route_from_cbor, route_to_cbor

__all__ = ["RoutedMessage"]

_HEADER_LEN: Final = struct.Struct(">H")


@dataclass(frozen=True, slots=True)
class RoutedMessage:
    onward: Route
    return_route: Route
    payload: bytes

    def next_hop(self) -> Address:
        if not self.onward:
            raise DecodeError("message has no onward route")
        return self.onward[0]

    def stepped(self, via: Address | None = None) -> RoutedMessage:
        """Past its first hop; `via` (the address it arrived through) joins the return route."""
        return_route = self.return_route if via is None else (via, *self.return_route)
        return RoutedMessage(self.onward[1:], return_route, self.payload)

    def stepped_in(self, via: Address) -> RoutedMessage:
        """As received from a transport: its onward route unchanged, `via` (the connection it
        came on) prepended to the return route."""
        return RoutedMessage(self.onward, (via, *self.return_route), self.payload)

    def encode(self) -> bytes:
        """header length (2) || CBOR [onward, return] || payload: the payload is not re-encoded."""
        header = cbor.encode([route_to_cbor(self.onward), route_to_cbor(self.return_route)])
        return _HEADER_LEN.pack(len(header)) + header + self.payload

    @classmethod
    def decode(
        cls, data: bytes | memoryview, *, max_size: int = limits.MAX_TRANSPORT_FRAME
    ) -> RoutedMessage:
        if len(data) < _HEADER_LEN.size:
            raise DecodeError("message too short")
        (length,) = _HEADER_LEN.unpack_from(data)
        if _HEADER_LEN.size + length > len(data):
            raise DecodeError("message header past the end")
        header = cbor.decode(
            bytes(data[_HEADER_LEN.size : _HEADER_LEN.size + length]), max_bytes=8192
        )
        onward, return_route = cbor.expect_array(header, "routes", 2)
        if len(data) > max_size:
            raise DecodeError(f"message of {len(data)} bytes over the limit of {max_size}")
        return cls(
            route_from_cbor(onward),
            route_from_cbor(return_route),
            bytes(data[_HEADER_LEN.size + length :]),
        )
