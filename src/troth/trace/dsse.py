"""DSSE v1 envelopes (github.com/secure-systems-lab/dsse, protocol.md and envelope.md).

    PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
    envelope        = {"payload": base64(body), "payloadType": type,
                       "signatures": [{"keyid": text, "sig": base64(signature)}]}

The signature is over PAE(payloadType, payload bytes), the payload bytes exactly as carried
(never re-serialised before verifying). Base64 is RFC 4648 §4 with padding, as the DSSE
envelope examples use.

troth's trace envelopes (`decode_envelope`) are stricter than DSSE requires, so that one record
has exactly one byte string as its log leaf: exactly one signature; a `keyid` on it (which
securesystemslib needs to match signatures to keys); members in RFC 8785 order with no
whitespace; canonical base64. `parse_envelope` accepts any DSSE envelope (the spec vector).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any, Final

from troth import limits
from troth.encoding.ijson import load_json
from troth.errors import DecodeError, DecodeProblem

__all__ = [
    "Envelope",
    "EnvelopeSignature",
    "b64decode",
    "b64encode",
    "decode_envelope",
    "encode_envelope",
    "pae",
    "parse_envelope",
]

_PREFIX: Final = b"DSSEv1"
_MEMBERS: Final = frozenset({"payload", "payloadType", "signatures"})
_KEYID: Final = re.compile(r"[0-9a-f]{64}")
_CANONICAL: Final = re.compile(
    rb'\{"payload":"([A-Za-z0-9+/]*={0,2})","payloadType":("[\x20-\x21\x23-\x5b\x5d-\x7e]*"),'
    rb'"signatures":\[\{"keyid":"([0-9a-f]{64})","sig":"([A-Za-z0-9+/]*={0,2})"\}\]\}'
)
"""A canonical one-signature envelope, byte for byte (a payload type of printable ASCII
without quotes or backslashes, which JSON writes as is)."""
_JSON_TEXT: Final = {
    "application/vnd.troth.trace.v1+json": b'"application/vnd.troth.trace.v1+json"'
}


def pae(payload_type: str, payload: bytes) -> bytes:
    """The pre-authentication encoding that DSSE signs (protocol.md, "Signature definition")."""
    kind = payload_type.encode()
    return b"%s %d %s %d %s" % (_PREFIX, len(kind), kind, len(payload), payload)


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, what: str) -> bytes:
    """Strict RFC 4648 §4 base64 (padding required, no other characters), in canonical form
    (the unused bits of the last character zero), so one byte string has one text."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError(f"{what}: not base64") from None
    if base64.b64encode(data).decode("ascii") != text:
        raise DecodeError(f"{what}: base64 not in canonical form", DecodeProblem.NON_CANONICAL)
    return data


@dataclass(frozen=True, slots=True)
class EnvelopeSignature:
    keyid: str | None
    sig: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    """A decoded DSSE envelope (not verified): the payload bytes exactly as carried."""

    payload_type: str
    payload: bytes
    signatures: tuple[EnvelopeSignature, ...]

    def pae(self) -> bytes:
        return pae(self.payload_type, self.payload)


def encode_envelope(payload_type: str, payload: bytes, keyid: str, signature: bytes) -> bytes:
    """The canonical JSON of a one-signature envelope (RFC 8785: members sorted, no spaces; the
    values are base64, a hex keyid and a media type, which JSON never escapes)."""
    if not _KEYID.fullmatch(keyid):
        raise ValueError("a troth keyid is 64 lowercase hex digits")
    kind = _JSON_TEXT.get(payload_type) or json.dumps(payload_type).encode()
    return b'{"payload":"%s","payloadType":%s,"signatures":[{"keyid":"%s","sig":"%s"}]}' % (
        binascii.b2a_base64(payload, newline=False),  # = base64.b64encode, one call less
        kind,
        keyid.encode(),
        binascii.b2a_base64(signature, newline=False),
    )


def _text(value: Any, what: str) -> str:
    if type(value) is not str:
        raise DecodeError(f"{what}: not a string")
    return value


def parse_envelope(data: bytes, *, max_bytes: int = limits.MAX_TRACE_ENVELOPE_BYTES) -> Envelope:
    """Decode any DSSE envelope (keyids optional, several signatures). Raises DecodeError."""
    value = load_json(data, max_bytes=max_bytes, what="DSSE envelope")
    if type(value) is not dict:
        raise DecodeError("DSSE envelope: not an object")
    payload = b64decode(_text(value.get("payload"), "payload"), "payload")
    payload_type = _text(value.get("payloadType"), "payloadType")
    entries = value.get("signatures")
    if type(entries) is not list or not entries:
        raise DecodeError("DSSE envelope: no signatures")
    signatures = []
    for entry in entries:
        if type(entry) is not dict:
            raise DecodeError("DSSE signature: not an object")
        keyid = entry.get("keyid")
        signatures.append(
            EnvelopeSignature(
                None if keyid is None else _text(keyid, "keyid"),
                b64decode(_text(entry.get("sig"), "sig"), "sig"),
            )
        )
    return Envelope(payload_type, payload, tuple(signatures))


def decode_envelope(data: bytes) -> tuple[Envelope, str]:
    """Decode a troth trace envelope: one signature with a keyid (64 lowercase hex digits), in
    canonical form (the bytes `encode_envelope` writes and nothing else). Returns the
    envelope and the keyid. A canonical envelope is ASCII, so no Unicode check is needed: the
    comparison with the re-encoded form refuses every other spelling."""
    if len(data) > limits.MAX_TRACE_ENVELOPE_BYTES:
        raise DecodeError(f"trace envelope: {len(data)} bytes", DecodeProblem.OVER_LIMIT)
    layout = _CANONICAL.fullmatch(data)
    if layout is not None:  # the one canonical layout: no JSON parser needed to read it
        payload_text, kind_text, keyid_bytes, sig_text = layout.groups()
        payload_type = kind_text[1:-1].decode("ascii")  # no quote or backslash inside
        keyid = keyid_bytes.decode()
        payload = b64decode(payload_text.decode(), "payload")
        signature = b64decode(sig_text.decode(), "sig")
        signatures = (EnvelopeSignature(keyid, signature),)
        return Envelope(payload_type, payload, signatures), keyid
    try:
        value = json.loads(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise DecodeError("trace envelope: not ASCII JSON") from None
    if type(value) is not dict or set(value) != _MEMBERS:
        raise DecodeError("trace envelope: expected payload, payloadType, signatures")
    entries = value["signatures"]
    if type(entries) is not list or len(entries) != 1:
        count = len(entries) if type(entries) is list else 0
        raise DecodeError(f"trace envelope: {count} signatures, expected 1")
    entry = entries[0]
    if type(entry) is not dict or set(entry) != {"keyid", "sig"}:
        raise DecodeError("trace envelope: the signature needs a keyid and a sig")
    keyid, payload_type = entry["keyid"], value["payloadType"]
    if type(keyid) is not str or not _KEYID.fullmatch(keyid):
        raise DecodeError("trace envelope: the keyid is not 64 lowercase hex digits")
    if type(payload_type) is not str:
        raise DecodeError("trace envelope: payloadType is not a string")
    payload = b64decode(_text(value["payload"], "payload"), "payload")
    signature = b64decode(_text(entry["sig"], "sig"), "sig")
    if encode_envelope(payload_type, payload, keyid, signature) != data:
        raise DecodeError("trace envelope: not in canonical form", DecodeProblem.NON_CANONICAL)
    return Envelope(payload_type, payload, (EnvelopeSignature(keyid, signature),)), keyid
