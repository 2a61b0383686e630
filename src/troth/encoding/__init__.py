"""troth's encodings: canonical CBOR (deterministic encoding, strict bounded decoding) and the
I-JSON loader (`troth.encoding.ijson`) for JSON input."""

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
