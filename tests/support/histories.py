"""Hand-built change histories (honest and hostile) for verification tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from troth.crypto import KeyType, sha256
from troth.crypto.private import PrivateKey, generate_private_key
from troth.encoding import cbor
from troth.identity import ChangeBody, SignedChange, encode_history
from troth.identity.change import CHANGE_TYPE, FORMAT_VERSION, HISTORY_TYPE

T0 = 1_780_000_000
DAY = 86_400


def body_for(
    key: PrivateKey,
    previous: bytes | None,
    created: int,
    valid_from: int | None = None,
    valid_until: int | None = None,
) -> ChangeBody:
    return ChangeBody(
        previous,
        key.public_key,
        created,
        created if valid_from is None else valid_from,
        created + 365 * DAY if valid_until is None else valid_until,
    )


def sign_change(body: ChangeBody, key: PrivateKey, previous_key: PrivateKey | None) -> SignedChange:
    encoded = body.encode()
    return SignedChange(
        encoded, key.sign(encoded), None if previous_key is None else previous_key.sign(encoded)
    )


def honest_history(
    changes: int = 3, key_type: KeyType = KeyType.ED25519, start: int = T0
) -> tuple[list[PrivateKey], list[SignedChange]]:
    """A valid history of `changes` changes, one day apart."""
    keys = [generate_private_key(key_type) for _ in range(changes)]
    signed: list[SignedChange] = []
    previous: bytes | None = None
    for index, key in enumerate(keys):
        body = body_for(key, previous, start + index * DAY)
        change = sign_change(body, key, keys[index - 1] if index else None)
        signed.append(change)
        previous = sha256(change.body)
    return keys, signed


def encode(changes: Sequence[SignedChange]) -> bytes:
    return encode_history(changes)


def raw_body(fields: list[Any]) -> bytes:
    """A change body with arbitrary fields (for malformed-body tests)."""
    return cbor.encode(fields)


def raw_history(
    entries: list[Any], type_tag: str = HISTORY_TYPE, version: int = FORMAT_VERSION
) -> bytes:
    return cbor.encode([type_tag, version, entries])


__all__ = [
    "CHANGE_TYPE",
    "DAY",
    "FORMAT_VERSION",
    "T0",
    "body_for",
    "encode",
    "honest_history",
    "raw_body",
    "raw_history",
    "sign_change",
]
