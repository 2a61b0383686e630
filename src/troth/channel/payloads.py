"""What rides inside the secure channel (docs/protocols.md, "Secure channel").

Handshake payloads (Noise XX messages 2 and 3, encrypted):
    auth = ["troth.channel.auth", 1, change history (bstr), channel-key attestation (bstr),
            [credential chain (bstr), ...]]

Transport plaintext (after the handshake): kind (1 byte) || body length (4, big-endian) || body
|| zero padding. Kinds: 0 data, 1 fragment (message id 8 || total 4 || offset 4 || chunk),
2 credentials (CBOR [chain, ...]), 3 close (code 1 || UTF-8 detail), 4 accepted (empty),
5 ping (empty: answer with a pong), 6 pong (empty) — the keepalive (secure.py, `keepalive`),
7 batch (two or more messages, each length 2 || message, each at least MIN_BATCH_MESSAGE bytes:
the one-frame messages held when the packets are taken, sealed as one frame).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Final

from troth import limits
from troth.encoding import cbor
from troth.errors import ChannelError, ChannelFailure, DecodeError

__all__ = [
    "MAX_AUTH_PAYLOAD",
    "MIN_BATCH_MESSAGE",
    "AuthPayload",
    "Kind",
    "batch_items",
    "fitting_chains",
    "pack",
    "unpack",
]

AUTH_TYPE: Final = "troth.channel.auth"
VERSION: Final = 1
HEADER: Final = struct.Struct(">BI")
FRAGMENT: Final = struct.Struct(">QII")
BATCH_ITEM: Final = struct.Struct(">H")
MIN_BATCH_MESSAGE: Final = limits.MIN_BATCH_MESSAGE
MAX_AUTH_PAYLOAD: Final = limits.MAX_CHANNEL_FRAME - 97
"""Largest auth payload a handshake message carries: Noise XX message 2 holds it beside an
ephemeral key (32 bytes), the encrypted static key (32 + a 16-byte tag) and its own tag (16),
and its frame that and the frame type byte, all within MAX_CHANNEL_FRAME (message 3 has less
around it; review 56x, channel 3: without the type byte, a payload of the largest size made a
frame of 65,536 bytes, and the responder closed every channel TOO_LARGE)."""


class Kind(enum.IntEnum):
    """What a transport frame's plaintext carries."""

    DATA = 0
    FRAGMENT = 1
    CREDENTIALS = 2
    CLOSE = 3
    ACCEPTED = 4  # the responder admitted the initiator (sent once, after message 3)
    PING = 5  # keepalive: the peer answers with a PONG
    PONG = 6  # keepalive: the answer to a PING
    BATCH = 7  # two or more messages, each its length (2 bytes) and its bytes


@dataclass(frozen=True, slots=True)
class AuthPayload:
    """What each side presents in its handshake message (2 or 3), before verification."""

    history: bytes
    attestation: bytes
    credentials: tuple[bytes, ...]

    def encode(self) -> bytes:
        """The CBOR payload."""
        return cbor.encode(
            [AUTH_TYPE, VERSION, self.history, self.attestation, list(self.credentials)]
        )

    @classmethod
    def decode(cls, data: bytes) -> AuthPayload:
        """Parse a payload (ChannelError PEER_INVALID when malformed)."""
        try:
            value = cbor.expect_array(
                cbor.decode(data, max_bytes=limits.MAX_CHANNEL_FRAME), "auth", 5
            )
            cbor.expect_header(value, AUTH_TYPE, VERSION, "auth")
            chains = cbor.expect_array(value[4], "credentials")
            if len(chains) > limits.MAX_CHANNEL_CREDENTIALS:
                raise DecodeError("too many credentials")
            return cls(
                cbor.expect_bytes(value[2], "history"),
                cbor.expect_bytes(value[3], "attestation"),
                tuple(cbor.expect_bytes(c, "credential") for c in chains),
            )
        except DecodeError as exc:
            raise ChannelError(ChannelFailure.PEER_INVALID, f"auth payload: {exc}") from None


def fitting_chains(
    history: bytes, attestation: bytes, chains: tuple[bytes, ...]
) -> tuple[bytes, ...]:
    """The chains of `chains`, in order, that an auth payload beside `history` and
    `attestation` carries within MAX_AUTH_PAYLOAD (at most MAX_CHANNEL_CREDENTIALS): one that
    does not fit with those before it is left out, the others still shown. Chains within
    MAX_CHAIN_BYTES add up to more than a handshake message holds (review 45g, channel 1:
    eight credentials at MAX_CREDENTIAL_BYTES closed every channel TOO_LARGE)."""
    size = len(AuthPayload(history, attestation, ()).encode())
    kept: list[bytes] = []
    for chain in chains:
        if len(kept) == limits.MAX_CHANNEL_CREDENTIALS:
            break
        need = len(cbor.encode(chain))  # its length header and bytes (the list's stays 1)
        if size + need <= MAX_AUTH_PAYLOAD:
            kept.append(chain)
            size += need
    return tuple(kept)


def pack(kind: Kind, parts: tuple[bytes | bytearray | memoryview, ...], padding: int) -> bytes:
    """The plaintext of one transport frame (its body given in parts, joined once), padded to
    a multiple of `padding` (0: none)."""
    length = sum(len(p) for p in parts)
    total = HEADER.size + length
    pad = padding - total % padding if padding > 1 and total % padding else 0
    return b"".join((HEADER.pack(kind, length), *parts, bytes(pad)))


_KINDS: Final = {int(kind): kind for kind in Kind}  # by the kind byte (Kind(byte) is slower)


def unpack(plain: bytes | bytearray) -> tuple[Kind, memoryview]:
    """The kind and body of a transport plaintext (ChannelError PROTOCOL when malformed)."""
    if len(plain) < HEADER.size:
        raise ChannelError(ChannelFailure.PROTOCOL, "short frame")
    kind, length = HEADER.unpack_from(plain)
    if length > len(plain) - HEADER.size:
        raise ChannelError(ChannelFailure.PROTOCOL, "frame length past the end")
    known = _KINDS.get(kind)
    if known is None:
        raise ChannelError(ChannelFailure.PROTOCOL, f"unknown frame kind {kind}")
    return known, memoryview(plain)[HEADER.size : HEADER.size + length]


def batch_items(body: memoryview) -> list[memoryview]:
    """The messages of a BATCH frame's body (views of it): two or more, each a 2-byte length
    and that many bytes (at least MIN_BATCH_MESSAGE), tiling the body exactly (ChannelError
    PROTOCOL if not)."""
    items: list[memoryview] = []
    at, end = 0, len(body)
    item = BATCH_ITEM.size
    while at < end:
        if end - at < item:
            raise ChannelError(ChannelFailure.PROTOCOL, "a batch item header past the end")
        (length,) = BATCH_ITEM.unpack_from(body, at)
        at += item
        if length < MIN_BATCH_MESSAGE or length > end - at:
            raise ChannelError(
                ChannelFailure.PROTOCOL,
                f"a batch item under {MIN_BATCH_MESSAGE} bytes or past the end",
            )
        items.append(body[at : at + length])
        at += length
    if len(items) < 2:
        raise ChannelError(ChannelFailure.PROTOCOL, "a batch of fewer than two messages")
    return items
