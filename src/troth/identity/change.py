"""The change-history format (docs/formats.md, "Identity change history").

    change body   = ["troth.identity.change", 2, index, previous-hash / null,
                     [key-type, public-key], next-key-digest, created_at, valid_from, valid_until]
    signed change = [body (bstr), signature (bstr), previous-key signature (bstr / null)]
    history       = ["troth.identity.history", 2, [signed change, ...], checkpoint / null]
    checkpoint    = [identifier (bstr, 32), authority (bstr, 32), index (uint, >= 1)]
    next-key-digest = SHA-256("troth.identity.next-key/1" 0x00 || CBOR [key-type, public-key])

Every change commits to the digest of the NEXT primary key (pre-rotation, as KERI does); a
rotation must reveal that key. A history with a null checkpoint holds every change from the
first; a checkpointed history holds the changes from `index` on, and names the identity (its
first change is not there to hash) and the authority whose feed attests change `index`
(docs/formats.md, "Checkpointed histories"). The signatures are over the body bytes exactly as
carried; the body begins with its type tag, so a change signature can never be taken for
another troth signature (domain separation).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from troth import limits
from troth.crypto import KeyType, PublicKey, sha256
from troth.encoding import cbor
from troth.errors import DecodeError, DecodeProblem, InvalidKey

__all__ = [
    "CHANGE_TYPE",
    "FORMAT_VERSION",
    "HISTORY_TYPE",
    "ChangeBody",
    "Checkpoint",
    "FirstChanges",
    "SignedChange",
    "UnverifiedHistory",
    "decode_history",
    "decode_public_key",
    "encode_history",
    "encode_public_key",
    "next_key_digest",
]

CHANGE_TYPE: Final = "troth.identity.change"
HISTORY_TYPE: Final = "troth.identity.history"
FORMAT_VERSION: Final = 2
NEXT_KEY_DOMAIN: Final = b"troth.identity.next-key/1\x00"
_SIGNING_TYPES: Final = frozenset({KeyType.ED25519, KeyType.P256})
_KEY_TYPES: Final = {int(key_type): key_type for key_type in KeyType}
_UINT_BOUND: Final = 1 << 64


def decode_public_key(
    value: Any, what: str, allowed: frozenset[KeyType] = _SIGNING_TYPES
) -> PublicKey:
    pair = cbor.expect_array(value, what, 2)
    number = pair[0]
    key_type = _KEY_TYPES.get(number) if type(number) is int else None
    if key_type is None:
        raise DecodeError(f"{what}: unknown key type {number!r}")
    if key_type not in allowed:
        raise DecodeError(f"{what}: {key_type.label} keys are not allowed here")
    try:
        return PublicKey(key_type, cbor.expect_bytes(pair[1], f"{what} bytes"))
    except InvalidKey as exc:
        raise DecodeError(f"{what}: {exc}") from None


def encode_public_key(key: PublicKey) -> list[Any]:
    return [int(key.key_type), key.data]


def next_key_digest(key: PublicKey) -> bytes:
    """The pre-rotation commitment to `key` (docs/formats.md, "Pre-rotation and stored
    histories"): SHA-256 of a domain tag and the key as carried in a change."""
    return sha256(_NEXT_KEY_PREFIXES[key.key_type] + key.data)


_NEXT_KEY_PREFIXES: Final = {
    key_type: NEXT_KEY_DOMAIN
    + cbor.encode([int(key_type), bytes(key_type.public_length)])[: -key_type.public_length]
    for key_type in KeyType
}
"""The domain tag and the CBOR of [key type, key] up to the key's bytes: a key of a type has
one length (PublicKey checks it), so its encoding is this prefix followed by the key itself."""


class ChangeBody(NamedTuple):  # NamedTuple: immutable and cheap to build (hot path)
    """One change: its position, link, primary key, commitment to the next key and window."""

    position: int  # the wire field `index`: the change's 0-based position in its history
    previous: bytes | None
    primary_key: PublicKey
    next_key_digest: bytes
    created_at: int
    valid_from: int
    valid_until: int

    def encode(self) -> bytes:
        key = self.primary_key
        position, previous, digest = self.position, self.previous, self.next_key_digest
        created_at, valid_from, valid_until = self.created_at, self.valid_from, self.valid_until
        value = [
            CHANGE_TYPE,
            FORMAT_VERSION,
            position,
            previous,
            [int(key.key_type), key.data],  # encode_public_key, inlined (hot path)
            digest,
            created_at,
            valid_from,
            valid_until,
        ]
        if (  # every field of the subset's exact types (cbor.encode_checked); else the walk
            type(key.data) is bytes
            and type(digest) is bytes
            and (previous is None or type(previous) is bytes)
            and type(position) is int
            and type(created_at) is int
            and type(valid_from) is int
            and type(valid_until) is int
            and 0 <= position < _UINT_BOUND
            and 0 <= created_at < _UINT_BOUND
            and 0 <= valid_from < _UINT_BOUND
            and 0 <= valid_until < _UINT_BOUND
        ):
            return cbor.encode_checked(value)
        return cbor.encode(value)

    @classmethod
    def decode(cls, data: bytes) -> ChangeBody:
        value = cbor.expect_array(
            cbor.decode(data, max_bytes=limits.MAX_CHANGE_BYTES), "change body"
        )
        cbor.expect_header(value, CHANGE_TYPE, FORMAT_VERSION, "change body")
        if len(value) != 9:
            raise DecodeError(f"change body: expected 9 elements, got {len(value)}")
        _, _, position, previous, key, digest, created_at, valid_from, valid_until = value
        if (  # hot path: exact types at once; on failure each field names its own error below
            type(position) is int
            and (previous is None or (type(previous) is bytes and len(previous) == 32))
            and type(digest) is bytes
            and len(digest) == 32
            and type(created_at) is int
            and type(valid_from) is int
            and type(valid_until) is int
            and min(position, created_at, valid_from, valid_until) >= 0
        ):
            return cls(
                position,
                previous,
                decode_public_key(key, "primary key"),
                digest,
                created_at,
                valid_from,
                valid_until,
            )
        previous = None if value[3] is None else cbor.expect_bytes(value[3], "previous hash", 32)
        return cls(
            position=cbor.expect_int(value[2], "index"),
            previous=previous,
            primary_key=decode_public_key(value[4], "primary key"),
            next_key_digest=cbor.expect_bytes(value[5], "next-key digest", 32),
            created_at=cbor.expect_int(value[6], "created_at"),
            valid_from=cbor.expect_int(value[7], "valid_from"),
            valid_until=cbor.expect_int(value[8], "valid_until"),
        )


class SignedChange(NamedTuple):
    """A change body with its signature and (after the first change) the previous key's."""

    body: bytes
    signature: bytes
    previous_signature: bytes | None

    def to_cbor(self) -> list[Any]:
        return [self.body, self.signature, self.previous_signature]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The checkpoint slot of a history that starts at change `index` > 0: the identity it
    belongs to and the authority whose feed attests (a kind-3 entry) that change `index`
    is the one presented."""

    identifier: bytes
    authority: bytes
    index: int

    def to_cbor(self) -> list[Any]:
        return [self.identifier, self.authority, self.index]


def encode_history(changes: Sequence[SignedChange], checkpoint: Checkpoint | None = None) -> bytes:
    """The history envelope around signed changes: every change from the first (checkpoint
    None), or the changes from `checkpoint.index` on."""
    slot = None if checkpoint is None else checkpoint.to_cbor()
    entries = [[c.body, c.signature, c.previous_signature] for c in changes]
    value = [HISTORY_TYPE, FORMAT_VERSION, entries, slot]
    if slot is not None:
        return cbor.encode(value)
    for body, signature, previous in entries:  # byte strings only, else the walk
        if not (
            type(body) is bytes
            and type(signature) is bytes
            and (previous is None or type(previous) is bytes)
        ):
            return cbor.encode(value)
    return cbor.encode_checked(value)


class FirstChanges:
    """First changes of one key type and one window (a batch's), and their one-change
    histories, encoded as `ChangeBody.encode` and `encode_history` encode them, sharing the
    encoder's work: its output for the batch's values is computed once and split around the
    byte strings that differ (the key, the next-key digest; the body, the signature). Each of
    these has a fixed length, and a byte string's encoding is its length's header and itself,
    so the splice is the encoder's output for the new values, byte for byte."""

    def __init__(
        self, key_type: KeyType, created_at: int, valid_from: int, valid_until: int
    ) -> None:
        self._key_type = key_type
        self._window = (created_at, valid_from, valid_until)
        marker = os.urandom(key_type.public_length)  # a P-256 point's encoding starts with 04
        key = PublicKey(key_type, b"\x04" + marker[1:] if key_type is KeyType.P256 else marker)
        digest = os.urandom(32)
        template = ChangeBody(0, None, key, digest, created_at, valid_from, valid_until)
        self._body = _split(template.encode(), (key.data, digest))
        self._history: tuple[int, int, tuple[bytes, ...] | None] = (-1, -1, None)

    def body(self, key: PublicKey, next_digest: bytes) -> tuple[ChangeBody, bytes]:
        """The first change committing to `next_digest` under `key`, and its encoding."""
        body = ChangeBody(0, None, key, next_digest, *self._window)
        parts = self._body
        if (
            parts is None
            or key.key_type is not self._key_type
            or type(key.data) is not bytes
            or type(next_digest) is not bytes
            or len(next_digest) != 32
        ):
            return body, body.encode()
        return body, parts[0] + key.data + parts[1] + next_digest + parts[2]

    def history(self, signed: SignedChange) -> bytes:
        """`encode_history([signed])` for a first change."""
        body, signature = signed.body, signed.signature
        if signed.previous_signature is not None or type(body) is not bytes:
            return encode_history([signed])
        if type(signature) is not bytes:
            return encode_history([signed])
        body_length, signature_length, parts = self._history
        if body_length != len(body) or signature_length != len(signature):
            markers = os.urandom(len(body)), os.urandom(len(signature))
            parts = _split(encode_history([SignedChange(*markers, None)]), markers)
            self._history = (len(body), len(signature), parts)
        if parts is None:
            return encode_history([signed])
        return parts[0] + body + parts[1] + signature + parts[2]


def _split(encoded: bytes, markers: Sequence[bytes]) -> tuple[bytes, ...] | None:
    """`encoded` cut around each marker (random bytes, in order), or None when a marker is not
    found exactly once (then nothing is spliced: the encoder runs for every value)."""
    parts = []
    at = 0
    for marker in markers:
        found = encoded.find(marker, at)
        if found < 0 or encoded.count(marker) != 1:
            return None
        parts.append(encoded[at:found])
        at = found + len(marker)
    parts.append(encoded[at:])
    return tuple(parts)


def decode_history(data: bytes) -> list[SignedChange]:
    """Decode (not verify) a history's changes. Raises only DecodeError."""
    return list(UnverifiedHistory.decode(data).changes)


def _decode_checkpoint(value: Any) -> Checkpoint | None:
    if value is None:
        return None
    fields = cbor.expect_array(value, "history checkpoint", 3)
    index = cbor.expect_int(fields[2], "checkpoint index")
    if not 1 <= index <= limits.MAX_CHANGE_INDEX:
        raise DecodeError(
            f"history checkpoint: index {index} (1..{limits.MAX_CHANGE_INDEX}; a history "
            "from change 0 has no checkpoint)"
        )
    return Checkpoint(
        cbor.expect_bytes(fields[0], "checkpoint identifier", 32),
        cbor.expect_bytes(fields[1], "checkpoint authority", 32),
        index,
    )


def _signed_change(entry: Any, what: str) -> SignedChange:
    fields = cbor.expect_array(entry, what, 3)
    return SignedChange(
        body=cbor.expect_bytes(fields[0], f"{what} body"),
        signature=cbor.expect_bytes(fields[1], f"{what} signature", 64),
        previous_signature=None
        if fields[2] is None
        else cbor.expect_bytes(fields[2], f"{what} previous signature", 64),
    )


def _decode_envelope(data: bytes) -> tuple[list[SignedChange], Checkpoint | None]:
    value = cbor.expect_array(
        cbor.decode(data, max_bytes=limits.MAX_IDENTITY_HISTORY_BYTES), "history"
    )
    cbor.expect_header(value, HISTORY_TYPE, FORMAT_VERSION, "history")
    if len(value) != 4:
        raise DecodeError(f"history: expected 4 elements, got {len(value)}")
    checkpoint = _decode_checkpoint(value[3])
    entries = cbor.expect_array(value[2], "changes")
    if not entries:
        raise DecodeError("history: no changes")
    if len(entries) > limits.MAX_IDENTITY_CHANGES:
        raise DecodeError(
            f"history: {len(entries)} changes, over the limit of {limits.MAX_IDENTITY_CHANGES}",
            DecodeProblem.OVER_LIMIT,
        )
    first = 0 if checkpoint is None else checkpoint.index
    changes = []
    for offset, entry in enumerate(entries):
        # hot path: exact types checked inline, the messages built only on failure
        if type(entry) is list and len(entry) == 3:
            body, signature, previous = entry
            if (
                type(body) is bytes
                and type(signature) is bytes
                and len(signature) == 64
                and (previous is None or (type(previous) is bytes and len(previous) == 64))
            ):
                changes.append(SignedChange(body, signature, previous))
                continue
        changes.append(_signed_change(entry, f"change {first + offset}"))
    return changes, checkpoint


class UnverifiedHistory(NamedTuple):
    """A decoded history not yet verified, with the bytes it was decoded from: every change
    from the first, or (with a checkpoint) the changes from `checkpoint.index` on."""

    data: bytes
    changes: tuple[SignedChange, ...]
    checkpoint: Checkpoint | None = None

    @classmethod
    def decode(cls, data: bytes) -> UnverifiedHistory:
        """Decode (not verify) `data`. Raises only DecodeError."""
        changes, checkpoint = _decode_envelope(data)
        return cls(bytes(data), tuple(changes), checkpoint)

    @property
    def identifier_digest(self) -> bytes:
        """The identifier it claims: the hash of its first change body, or the one its
        checkpoint names (formats.md)."""
        if self.checkpoint is not None:
            return self.checkpoint.identifier
        return sha256(self.changes[0].body)

    @property
    def first_index(self) -> int:
        """The index of its first change (0 unless checkpointed)."""
        return 0 if self.checkpoint is None else self.checkpoint.index
