"""MCP frame golden vectors: the stored bytes are exactly what the encoder writes, and decode
to what docs/formats.md says ("MCP frames"); one byte changed anywhere is refused or changes
what decodes."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.vectors.mcp.generate import build
from troth.errors import DecodeError
from troth.integrations.mcp.frames import McpFrame

VECTOR: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "mcp" / "frame_vectors.json").read_text()
)["vectors"]


def test_regenerates_byte_for_byte() -> None:
    assert build() == VECTOR


def test_stored_frames_decode() -> None:
    session = bytes.fromhex(VECTOR["session"])
    frame = McpFrame.decode(bytes.fromhex(VECTOR["message_frame"]))
    assert frame == McpFrame(session, VECTOR["message"].encode())
    assert McpFrame.decode(bytes.fromhex(VECTOR["end_frame"])) == McpFrame(session, None)


@pytest.mark.parametrize("index", range(40))
def test_one_byte_changed_in_the_header_is_refused_or_decodes_differently(index: int) -> None:
    data = bytearray(bytes.fromhex(VECTOR["message_frame"]))
    data[index] ^= 0x01
    original = McpFrame.decode(bytes.fromhex(VECTOR["message_frame"]))
    with contextlib.suppress(DecodeError):
        assert McpFrame.decode(bytes(data)) != original
