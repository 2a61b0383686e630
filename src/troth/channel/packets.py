"""Packet framing for secure channels (docs/formats.md, "Secure channel"): a packet is one or
more frames, each length (2 bytes, big-endian) || frame (at most 65535 bytes, one Noise
message), so that a fragmented message travels as one packet. Frames:

    0x01 || Noise handshake message            (messages 1-3 of XX)
    0x02 || nonce (8, big-endian) || AEAD(k_epoch, nonce, ad = "", plaintext)

Instead of message 2, an initiator may get a **route error** from a node on the way (a relay
node that has no relay of the name it was sent to; docs/protocols.md, "Relay not found"):

    CBOR ["troth.route.error", 1, code]        code 1: relay not found

It is not a packet (its third byte is never 0x01) and it is not authenticated: a channel takes
it only while it waits for message 2, reports it (`NotRouted`) and changes no state; its
host may then give the handshake up, which is all an on-path party could already cause by
dropping message 1.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator
from typing import Final

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError, DecodeProblem

__all__ = [
    "HANDSHAKE_FRAME",
    "LENGTH",
    "PACKET_LIMIT",
    "ROUTE_ERROR_PREFIX",
    "TRANSPORT_FRAME",
    "RouteProblem",
    "group_frames",
    "is_route_error",
    "iter_packet",
    "parse_route_error",
    "route_error",
    "split_packet",
]

HANDSHAKE_FRAME: Final = 0x01
TRANSPORT_FRAME: Final = 0x02
LENGTH: Final = struct.Struct(">H")
PACKET_LIMIT: Final = limits.MAX_TRANSPORT_FRAME - 2 - limits.MAX_ROUTE_HEADER_BYTES
"""Largest packet: room is left for the largest route header and its length (review 47b,
limits 4)."""
ROUTE_ERROR_TYPE: Final = "troth.route.error"
ROUTE_ERROR_VERSION: Final = 1


class RouteProblem(enum.IntEnum):
    """Why a node on the way could not route a message (the code of a route error)."""

    RELAY_NOT_FOUND = 1  # no relay of that name is up (unknown, or its owner is gone)

    @property
    def text(self) -> str:
        """What the problem is called in errors and logs."""
        return self.name.lower().replace("_", " ")


ROUTE_ERROR_PREFIX: Final = cbor.encode([ROUTE_ERROR_TYPE, ROUTE_ERROR_VERSION, 0])[:-1]
"""The bytes every route error starts with (its code follows)."""


def route_error(problem: RouteProblem) -> bytes:
    """A route error saying `problem` (21 bytes: smaller than the message 1 it answers)."""
    return cbor.encode([ROUTE_ERROR_TYPE, ROUTE_ERROR_VERSION, int(problem)])


def is_route_error(payload: bytes | bytearray | memoryview) -> bool:
    """Whether `payload` starts like a route error (a packet never does)."""
    return bytes(payload[: len(ROUTE_ERROR_PREFIX)]) == ROUTE_ERROR_PREFIX


def parse_route_error(payload: bytes | bytearray | memoryview) -> RouteProblem:
    """The problem a route error names (DecodeError when it is not a route error)."""
    value = cbor.expect_array(cbor.decode(bytes(payload), max_bytes=64), "route error", 3)
    cbor.expect_header(value, ROUTE_ERROR_TYPE, ROUTE_ERROR_VERSION, "route error")
    code = cbor.expect_int(value[2], "route error code")
    try:
        return RouteProblem(code)
    except ValueError:
        raise DecodeError(f"unknown route error code {code}") from None


def split_packet(packet: bytes | bytearray | memoryview) -> list[memoryview]:
    """The frames of a packet, as views of it (DecodeError when it is not a packet)."""
    return list(iter_packet(packet))


def iter_packet(packet: bytes | bytearray | memoryview) -> Iterator[memoryview]:
    """The frames of a packet, as views of it, one at a time: DecodeError at once for a packet
    over the limit or an empty one, else when the frames reach a length that runs past the
    end. A reader that gives a packet up at a frame reads none of the frames after it
    (review 34e, frames 1: 65,536 empty frames were cut out of a 128 KiB packet first)."""
    size = len(packet)
    if size > limits.MAX_TRANSPORT_FRAME:
        raise DecodeError(f"packet of {size} bytes", DecodeProblem.OVER_LIMIT)
    if not size:
        raise DecodeError("empty packet")
    view = memoryview(packet)
    at = 0
    while at < size:
        if size - at < LENGTH.size:
            raise DecodeError("truncated packet")
        (length,) = LENGTH.unpack_from(view, at)
        start = at + LENGTH.size
        at = start + length
        if at > size:
            raise DecodeError("frame past the end of its packet")
        yield view[start:at]


def group_frames(plains: list[bytes], overhead: int) -> list[tuple[list[bytes], int]]:
    """Plaintexts grouped into packets of up to PACKET_LIMIT bytes, in order, each with its
    packet's size (one frame per plaintext, `overhead` bytes more than it, length-prefixed):
    the sender allocates each packet once and encrypts every frame straight into its place,
    so a fragmented message leaves as one packet, copied once."""
    groups: list[tuple[list[bytes], int]] = []
    group: list[bytes] = []
    size = 0
    for plain in plains:
        need = LENGTH.size + overhead + len(plain)
        if group and size + need > PACKET_LIMIT:
            groups.append((group, size))
            group, size = [], 0
        group.append(plain)
        size += need
    if group:
        groups.append((group, size))
    return groups
