"""Canonical CBOR for troth's own formats: deterministic encoding, strict bounded decoding."""

from troth.encoding.cbor import (
    decode,
    encode,
    expect_array,
    expect_bytes,
    expect_header,
    expect_int,
    expect_text,
)

__all__ = [
    "decode",
    "encode",
    "expect_array",
    "expect_bytes",
    "expect_header",
    "expect_int",
    "expect_text",
]
