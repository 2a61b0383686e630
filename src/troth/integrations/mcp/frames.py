"""MCP frames: JSON-RPC messages carried over a secure channel as one-way service messages
(docs/protocols.md, "MCP service").

    frame = ["troth.mcp.frame", 1, session (16 bytes), message (bytes) | null]

`message` is one JSON-RPC message, UTF-8 JSON, exactly as the stdio transport writes a line;
null ends the session. The client picks the session id (random); the server keys sessions by
(channel, session), so no other channel can speak in a session. A frame is at most
MAX_MCP_FRAME bytes, what a service message may be, in both directions. No MCP SDK here: the
node decodes frames without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError, DecodeProblem

__all__ = ["FRAME_TYPE", "SESSION_BYTES", "VERSION", "McpFrame"]

FRAME_TYPE: Final = "troth.mcp.frame"
VERSION: Final = 1
SESSION_BYTES: Final = 16


@dataclass(frozen=True, slots=True)
class McpFrame:
    """One frame of an MCP session: a JSON-RPC message, or None (the session ends)."""

    session: bytes
    message: bytes | None

    def encode(self) -> bytes:
        """The frame's bytes (DecodeError OVER_LIMIT when it would be over MAX_MCP_FRAME)."""
        data = cbor.encode([FRAME_TYPE, VERSION, self.session, self.message])
        if len(data) > limits.MAX_MCP_FRAME:
            raise DecodeError(
                f"an MCP frame of {len(data)} bytes is over {limits.MAX_MCP_FRAME}",
                DecodeProblem.OVER_LIMIT,
            )
        return data

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> McpFrame:
        """A frame from its bytes (DecodeError when it is not one)."""
        value = cbor.expect_array(cbor.decode(data, max_bytes=limits.MAX_MCP_FRAME), "MCP frame", 4)
        cbor.expect_header(value, FRAME_TYPE, VERSION, "MCP frame")
        session = cbor.expect_bytes(value[2], "session", SESSION_BYTES)
        message = None if value[3] is None else cbor.expect_bytes(value[3], "message")
        return cls(session, message)
