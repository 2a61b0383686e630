"""TCP framing: version (1 byte, 0x01) || length (4 bytes, big-endian) || routed message.
Frames over `limits.MAX_TRANSPORT_FRAME` are refused before anything is read into memory."""

from __future__ import annotations

import struct
from typing import Final

from troth import limits
from troth.errors import DecodeError

__all__ = ["FRAME_HEADER", "FRAME_VERSION", "check_header", "frame"]

FRAME_VERSION: Final = 0x01
FRAME_HEADER: Final = struct.Struct(">BI")


def frame(body: bytes) -> bytes:
    if len(body) > limits.MAX_TRANSPORT_FRAME:
        raise DecodeError(f"frame of {len(body)} bytes over the limit")
    return FRAME_HEADER.pack(FRAME_VERSION, len(body)) + body


def check_header(header: bytes) -> int:
    """The body length announced by a frame header (DecodeError for a bad version or size)."""
    version, length = FRAME_HEADER.unpack(header)
    if version != FRAME_VERSION:
        raise DecodeError(f"unknown frame version {version}")
    if length > limits.MAX_TRANSPORT_FRAME:
        raise DecodeError(f"frame of {length} bytes over the limit of {limits.MAX_TRANSPORT_FRAME}")
    return int(length)
