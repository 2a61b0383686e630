"""Packet framing for secure channels (docs/formats.md, "Secure channel"): a packet is one or
more frames, each length (2 bytes, big-endian) || frame (at most 65535 bytes, one Noise
message), so that a fragmented message travels as one packet. Frames:

    0x01 || Noise handshake message            (messages 1-3 of XX)
    0x02 || nonce (8, big-endian) || AEAD(k_epoch, nonce, ad = "", plaintext)
"""

from __future__ import annotations

import struct
from typing import Final

from troth import limits
from troth.errors import DecodeError, DecodeProblem

__all__ = [
    "HANDSHAKE_FRAME",
    "LENGTH",
    "PACKET_LIMIT",
    "TRANSPORT_FRAME",
    "group_frames",
    "split_packet",
]

HANDSHAKE_FRAME: Final = 0x01
TRANSPORT_FRAME: Final = 0x02
LENGTH: Final = struct.Struct(">H")
PACKET_LIMIT: Final = limits.MAX_TRANSPORT_FRAME - 4096  # leaves room for the routes


def split_packet(packet: bytes | bytearray | memoryview) -> list[memoryview]:
    """The frames of a packet, as views of it (DecodeError when it is not a packet)."""
    if len(packet) > limits.MAX_TRANSPORT_FRAME:
        raise DecodeError(f"packet of {len(packet)} bytes", DecodeProblem.OVER_LIMIT)
    view = memoryview(packet)
    frames = []
    at = 0
    while at < len(view):
        if len(view) - at < LENGTH.size:
            raise DecodeError("truncated packet")
        (length,) = LENGTH.unpack_from(view, at)
        start = at + LENGTH.size
        if start + length > len(view):
            raise DecodeError("frame past the end of its packet")
        frames.append(view[start : start + length])
        at = start + length
    if not frames:
        raise DecodeError("empty packet")
    return frames


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
