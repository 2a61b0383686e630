"""Packet framing for secure channels (docs/formats.md, "Secure channel"): a packet is one or
more frames, each length (2 bytes, big-endian) || frame (at most 65535 bytes, one Noise
message), so that a fragmented message travels as one packet. Frames:

    0x01 || Noise handshake message            (messages 1-3 of XX)
    0x02 || nonce (8, big-endian) || AEAD(k_epoch, nonce, ad = "", plaintext)
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final

from troth import limits
from troth.errors import DecodeError, DecodeProblem

__all__ = [
    "HANDSHAKE_FRAME",
    "LENGTH",
    "PACKET_LIMIT",
    "TRANSPORT_FRAME",
    "pack_frames",
    "split_packet",
]

HANDSHAKE_FRAME: Final = 0x01
TRANSPORT_FRAME: Final = 0x02
LENGTH: Final = struct.Struct(">H")
PACKET_LIMIT: Final = limits.MAX_TRANSPORT_FRAME - 4096  # leaves room for the routes

Seal = Callable[[bytes, memoryview], None]
"""Writes one frame for a plaintext into the view given (the frame's place in the packet)."""


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


def pack_frames(plains: list[bytes], overhead: int, seal: Seal) -> list[bytearray]:
    """Packets of up to PACKET_LIMIT bytes holding one frame per plaintext (`overhead` bytes
    more than it), in order: each packet is allocated once and `seal` writes every frame
    straight into its place (a fragmented message leaves as one packet, copied once)."""
    packets: list[bytearray] = []
    group: list[bytes] = []
    size = 0
    for plain in plains:
        need = LENGTH.size + overhead + len(plain)
        if group and size + need > PACKET_LIMIT:
            packets.append(_packet(group, size, overhead, seal))
            group, size = [], 0
        group.append(plain)
        size += need
    if group:
        packets.append(_packet(group, size, overhead, seal))
    return packets


def _packet(plains: list[bytes], size: int, overhead: int, seal: Seal) -> bytearray:
    packet = bytearray(size)
    view = memoryview(packet)
    at = 0
    for plain in plains:
        length = overhead + len(plain)
        LENGTH.pack_into(packet, at, length)
        at += LENGTH.size
        seal(plain, view[at : at + length])
        at += length
    return packet
