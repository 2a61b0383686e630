"""Hand-built change histories (honest and hostile) for verification tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from troth.crypto import KeyType, sha256
from troth.crypto.private import PrivateKey, generate_private_key
from troth.encoding import cbor
from troth.identity import ChangeBody, SignedChange, encode_history, next_key_digest
from troth.identity.change import CHANGE_TYPE, FORMAT_VERSION, HISTORY_TYPE

T0 = 1_780_000_000
DAY = 86_400


def body_for(
    key: PrivateKey,
    previous: bytes | None,
    created: int,
    valid_from: int | None = None,
    valid_until: int | None = None,
    *,
    commit: PrivateKey | None = None,
    index: int | None = None,
) -> ChangeBody:
    """A change body for `key`, committing to `commit` (a throwaway key when None); its index
    is 0 for a first change and 1 otherwise unless given."""
    committed = commit or generate_private_key(KeyType.ED25519)
    return ChangeBody(
        (0 if previous is None else 1) if index is None else index,
        previous,
        key.public_key,
        next_key_digest(committed.public_key),
        created,
        created if valid_from is None else valid_from,
        created + 365 * DAY if valid_until is None else valid_until,
    )


def sign_change(body: ChangeBody, key: PrivateKey, previous_key: PrivateKey | None) -> SignedChange:
    encoded = body.encode()
    return SignedChange(
        encoded, key.sign(encoded), None if previous_key is None else previous_key.sign(encoded)
    )


class HonestHistory(NamedTuple):
    """Changes signed by `keys` (key i in change i); the last change commits to `next_key`."""

    keys: list[PrivateKey]
    changes: list[SignedChange]
    next_key: PrivateKey


def honest_history(
    changes: int = 3, key_type: KeyType = KeyType.ED25519, start: int = T0
) -> HonestHistory:
    """A valid history of `changes` changes, one day apart, each committing to the next key."""
    keys = [generate_private_key(key_type) for _ in range(changes + 1)]
    signed: list[SignedChange] = []
    previous: bytes | None = None
    for index in range(changes):
        body = body_for(
            keys[index], previous, start + index * DAY, commit=keys[index + 1], index=index
        )
        change = sign_change(body, keys[index], keys[index - 1] if index else None)
        signed.append(change)
        previous = sha256(change.body)
    return HonestHistory(keys[:changes], signed, keys[changes])


def extend(
    history: HonestHistory, created: int, *, new_key: PrivateKey | None = None
) -> HonestHistory:
    """`history` with one more change at `created`, revealing `new_key` (default: the committed
    key, i.e. an honest rotation) and signed by it and the current key."""
    revealed = new_key or history.next_key
    following = generate_private_key(revealed.key_type)
    body = body_for(
        revealed,
        sha256(history.changes[-1].body),
        created,
        commit=following,
        index=len(history.changes),
    )
    change = sign_change(body, revealed, history.keys[-1])
    return HonestHistory([*history.keys, revealed], [*history.changes, change], following)


def encode(changes: Sequence[SignedChange]) -> bytes:
    return encode_history(changes)


def raw_body(fields: list[Any]) -> bytes:
    """A change body with arbitrary fields (for malformed-body tests)."""
    return cbor.encode(fields)


def raw_history(
    entries: list[Any],
    type_tag: str = HISTORY_TYPE,
    version: int = FORMAT_VERSION,
    checkpoint: Any = None,
) -> bytes:
    return cbor.encode([type_tag, version, entries, checkpoint])


__all__ = [
    "CHANGE_TYPE",
    "DAY",
    "FORMAT_VERSION",
    "T0",
    "HonestHistory",
    "body_for",
    "encode",
    "extend",
    "honest_history",
    "raw_body",
    "raw_history",
    "sign_change",
]
