"""Revocation feed entries and the hash chain over them (docs/formats.md, "Revocation feed").

    entry    = ["troth.revocation", 2, seq, kind, target (32), revoked_by (32), revoked_at,
                reason, extra]
               kind 1: target = a credential hash; 2: an identifier; 3 (superseded): an
               identifier, extra = [change count, hash of change count-1], reason "";
               extra = null for kinds 1-2
    head_0   = SHA-256("troth.revocation.feed/2" 0x00 authority identifier)
    head_n+1 = SHA-256(head_n || entry_n bytes)

The header constants of the snapshot and the page are here too; pages are built in
troth.credentials.revocation_pages and verified in troth.credentials.revocation.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Final

from troth import limits
from troth.crypto import sha256
from troth.encoding import cbor
from troth.errors import DecodeError
from troth.identity import Identifier

__all__ = [
    "ENTRY_TYPE",
    "PAGE_TYPE",
    "SNAPSHOT_TYPE",
    "VERSION",
    "RevocationEntry",
    "RevocationKind",
    "Supersession",
    "feed_genesis",
    "next_head",
]

ENTRY_TYPE: Final = "troth.revocation"
SNAPSHOT_TYPE: Final = "troth.revocation.snapshot"
PAGE_TYPE: Final = "troth.revocation.page"
VERSION: Final = 2
_GENESIS: Final = b"troth.revocation.feed/2\x00"


class RevocationKind(enum.IntEnum):
    """What a revocation entry revokes: a credential (by its hash), an identity, or the
    histories a newer one supersedes."""

    CREDENTIAL = 1
    IDENTITY = 2
    SUPERSEDED = 3


_KINDS: Final = {int(kind): kind for kind in RevocationKind}


@dataclass(frozen=True, slots=True)
class Supersession:
    """A kind-3 entry's claim: the identity has at least `changes` changes, and change
    `changes - 1` hashes to `change_hash` (every shorter or different history is superseded)."""

    changes: int
    change_hash: bytes

    def __post_init__(self) -> None:
        if type(self.changes) is not int or not 2 <= self.changes <= limits.MAX_CHANGE_INDEX + 1:
            raise ValueError(f"a supersession names 2-{limits.MAX_CHANGE_INDEX + 1} changes")
        if type(self.change_hash) is not bytes or len(self.change_hash) != 32:
            raise ValueError("a supersession names a 32-byte change hash")


@dataclass(frozen=True, slots=True)
class RevocationEntry:
    """One entry of a revocation feed (docs/formats.md, "Revocation feed"): its sequence
    number, what it revokes (`kind`, `target`), who revoked it when and why, and for a
    supersession the change it names (`extra`)."""

    seq: int
    kind: RevocationKind
    target: bytes
    revoked_by: Identifier
    revoked_at: int
    reason: str
    extra: Supersession | None = None

    def __post_init__(self) -> None:
        # each field what a reader takes, not only of its length: a str target of 32, or a
        # bytes reason, was appended as CBOR text (bytes), and every verifier refused the feed
        # for good (review 61a, credentials 5)
        if type(self.target) is not bytes or len(self.target) != 32:
            raise ValueError(f"a {self.kind.name.lower()} revocation names 32 bytes")
        if not (
            type(self.seq) is int
            and type(self.revoked_at) is int
            and isinstance(self.revoked_by, Identifier)
            and type(self.reason) is str
        ):
            raise ValueError("seq and revoked_at are integers, revoked_by an identity, reason text")
        if len(self.reason) > limits.MAX_REVOCATION_REASON:
            raise ValueError("reason too long")
        if (self.kind is RevocationKind.SUPERSEDED) != (self.extra is not None):
            raise ValueError("a supersession (and only it) carries [changes, change hash]")
        if self.kind is RevocationKind.SUPERSEDED and self.reason:
            raise ValueError("a supersession has no reason")

    def encode(self) -> bytes:
        extra = None if self.extra is None else [self.extra.changes, self.extra.change_hash]
        return cbor.encode(
            [
                ENTRY_TYPE,
                VERSION,
                self.seq,
                int(self.kind),
                self.target,
                self.revoked_by.digest,
                self.revoked_at,
                self.reason,
                extra,
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> RevocationEntry:
        value = cbor.expect_array(
            cbor.decode(data, max_bytes=limits.MAX_REVOCATION_ENTRY_BYTES), "revocation"
        )
        cbor.expect_header(value, ENTRY_TYPE, VERSION, "revocation")
        if len(value) != 9:
            raise DecodeError("revocation: expected 9 elements")
        _, _, seq, kind, target, revoked_by, revoked_at, reason, extra = value
        kind = _KINDS.get(cbor.expect_int(kind, "kind"))
        if kind is None:
            raise DecodeError("revocation: unknown kind")
        try:
            if extra is not None:
                changes, change_hash = cbor.expect_array(extra, "supersession", 2)
                extra = Supersession(
                    cbor.expect_int(changes, "changes"), cbor.expect_bytes(change_hash, "hash")
                )
            return cls(
                cbor.expect_int(seq, "seq"),
                kind,
                cbor.expect_bytes(target, "target"),
                Identifier(cbor.expect_bytes(revoked_by, "revoked_by", 32)),
                cbor.expect_int(revoked_at, "revoked_at"),
                cbor.expect_text(reason, "reason"),
                extra,
            )
        except ValueError as exc:
            raise DecodeError(f"revocation: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "seq": self.seq,
            "kind": self.kind.name.lower(),
            "target": ("" if self.kind is RevocationKind.CREDENTIAL else "T") + self.target.hex(),
            "revoked_by": str(self.revoked_by),
            "revoked_at": self.revoked_at,
            "reason": self.reason,
        }
        if self.extra is not None:
            data["changes"] = self.extra.changes
            data["change_hash"] = self.extra.change_hash.hex()
        return data


def feed_genesis(authority: Identifier) -> bytes:
    """The head of `authority`'s empty feed: SHA-256("troth.revocation.feed/2" 0x00 ||
    identifier)."""
    return sha256(_GENESIS + authority.digest)


def next_head(head: bytes, entry: bytes) -> bytes:
    """The feed's head after `entry` (its encoded bytes): SHA-256(head || entry)."""
    return sha256(head + entry)
