"""The revocation feed: a signed, sequenced, append-only list of revocations by one authority
(docs/formats.md, "Revocation feed").

    entry    = ["troth.revocation", 1, seq, kind, target, revoked_by (32), revoked_at, reason]
               kind 1: target = a credential hash (SHA-256 of its body, 32 bytes: nobody can
               give another credential the same one); kind 2: an identifier (32 bytes)
    head_0   = SHA-256("troth.revocation.feed/1" 0x00 authority identifier)
    head_n+1 = SHA-256(head_n || entry_n bytes)
    snapshot = ["troth.revocation.snapshot", 1, authority (32), count, head_count, issued_at]
    feed     = ["troth.revocation.feed", 1, [snapshot, signature, attestation],
                [entry bytes, ...], authority history]

A verifier holds the newest feed it has verified and accepts a new one only if it extends it
(same entries, then more); it refuses to verify credentials when its feed is older than its
configured maximum staleness. Revocation is permanent: an entry can never be removed.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from troth import limits
from troth.crypto import sha256
from troth.encoding import cbor
from troth.errors import (
    CredentialError,
    CredentialFailure,
    DecodeError,
    DecodeProblem,
    IdentityError,
)
from troth.identity import (
    Identifier,
    Signer,
    VerifiedIdentity,
    verify_history,
    verify_signed_by,
)

__all__ = [
    "RevocationEntry",
    "RevocationKind",
    "VerifiedFeed",
    "build_feed",
    "feed_authority",
    "feed_genesis",
    "next_head",
    "verify_feed",
]

ENTRY_TYPE: Final = "troth.revocation"
SNAPSHOT_TYPE: Final = "troth.revocation.snapshot"
FEED_TYPE: Final = "troth.revocation.feed"
VERSION: Final = 1
_F = CredentialFailure
_VERIFIED: Final = object()


class RevocationKind(enum.IntEnum):
    CREDENTIAL = 1
    IDENTITY = 2


@dataclass(frozen=True, slots=True)
class RevocationEntry:
    seq: int
    kind: RevocationKind
    target: bytes
    revoked_by: Identifier
    revoked_at: int
    reason: str

    def __post_init__(self) -> None:
        if len(self.target) != 32:
            raise ValueError(f"a {self.kind.name.lower()} revocation names 32 bytes")
        if len(self.reason) > limits.MAX_REVOCATION_REASON:
            raise ValueError("reason too long")

    def encode(self) -> bytes:
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
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> RevocationEntry:
        value = cbor.expect_array(cbor.decode(data, max_bytes=1024), "revocation")
        cbor.expect_header(value, ENTRY_TYPE, VERSION, "revocation")
        if len(value) != 8:
            raise DecodeError("revocation: expected 8 elements")
        try:
            return cls(
                seq=cbor.expect_int(value[2], "seq"),
                kind=RevocationKind(cbor.expect_int(value[3], "kind")),
                target=cbor.expect_bytes(value[4], "target"),
                revoked_by=Identifier(cbor.expect_bytes(value[5], "revoked_by", 32)),
                revoked_at=cbor.expect_int(value[6], "revoked_at"),
                reason=cbor.expect_text(value[7], "reason"),
            )
        except ValueError as exc:
            raise DecodeError(f"revocation: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "kind": self.kind.name.lower(),
            "target": ("T" if self.kind is RevocationKind.IDENTITY else "") + self.target.hex(),
            "revoked_by": str(self.revoked_by),
            "revoked_at": self.revoked_at,
            "reason": self.reason,
        }


def feed_genesis(authority: Identifier) -> bytes:
    return sha256(b"troth.revocation.feed/1\x00" + authority.digest)


def next_head(head: bytes, entry: bytes) -> bytes:
    return sha256(head + entry)


def _snapshot_body(authority: Identifier, count: int, head: bytes, issued_at: int) -> bytes:
    return cbor.encode([SNAPSHOT_TYPE, VERSION, authority.digest, count, head, issued_at])


def build_feed(signer: Signer, entries: list[bytes], head: bytes, *, now: int) -> bytes:
    """The authority signs a snapshot of its `entries` (encoded, in order) ending at `head`."""
    body = _snapshot_body(signer.identity.identifier, len(entries), head, now)
    snapshot = [body, signer.sign(body), signer.attestation]
    return cbor.encode([FEED_TYPE, VERSION, snapshot, entries, signer.identity.history])


@dataclass(frozen=True, slots=True)
class VerifiedFeed:
    authority: Identifier
    count: int
    head: bytes
    issued_at: int
    entries: tuple[RevocationEntry, ...]
    revoked_credentials: frozenset[bytes] = field(repr=False)
    revoked_identities: frozenset[bytes] = field(repr=False)
    _token: object = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._token is not _VERIFIED:
            raise TypeError("VerifiedFeed is made by verify_feed")

    def check_fresh(self, *, now: int, max_staleness: int) -> None:
        if now - self.issued_at > max_staleness:
            raise CredentialError(
                _F.STALE_FEED, f"issued {now - self.issued_at} s ago, limit {max_staleness} s"
            )


class _FeedParts(NamedTuple):
    """A feed decoded, nothing verified."""

    body: bytes
    signature: Any
    attestation: Any
    snapshot: list[Any]
    raw_entries: list[bytes]
    history: bytes


def _decode_feed(data: bytes) -> _FeedParts:
    """Decode a feed's structure (formats.md, "Revocation feed"). Raises only DecodeError."""
    value = cbor.expect_array(
        cbor.decode(
            data, max_bytes=limits.MAX_FEED_BYTES, max_items=4 * limits.MAX_FEED_ENTRIES + 64
        ),
        "feed",
    )
    cbor.expect_header(value, FEED_TYPE, VERSION, "feed")
    if len(value) != 5:
        raise DecodeError("feed: expected 5 elements")
    body, signature, attestation = cbor.expect_array(value[2], "snapshot", 3)
    body = cbor.expect_bytes(body, "snapshot")
    snapshot = cbor.expect_array(cbor.decode(body), "snapshot", 6)
    cbor.expect_header(snapshot, SNAPSHOT_TYPE, VERSION, "snapshot")
    raw_entries = [cbor.expect_bytes(e, "entry") for e in cbor.expect_array(value[3], "entries")]
    if len(raw_entries) > limits.MAX_FEED_ENTRIES:
        raise DecodeError("feed: too many entries", DecodeProblem.OVER_LIMIT)
    history = cbor.expect_bytes(value[4], "authority history")
    return _FeedParts(body, signature, attestation, snapshot, raw_entries, history)


def feed_authority(data: bytes) -> Identifier:
    """The authority a feed claims to be from (unverified: pass it to verify_feed)."""
    try:
        return Identifier(cbor.expect_bytes(_decode_feed(data).snapshot[2], "authority", 32))
    except DecodeError as exc:
        raise CredentialError(_F.FEED_INVALID, str(exc)) from None


def verify_feed(
    data: bytes,
    *,
    authority: Identifier,
    now: int,
    max_staleness: int,
    previous: VerifiedFeed | None = None,
    known: Callable[[VerifiedIdentity], None] | None = None,
) -> VerifiedFeed:
    """Verify a feed by `authority`, fresh at `now`, extending `previous` if one is held;
    `known` raises IdentityError when the embedded history forks from or rolls back a copy
    the caller stored."""
    try:
        body, signature, attestation, snapshot, raw_entries, history = _decode_feed(data)
        signer = Identifier(cbor.expect_bytes(snapshot[2], "authority", 32))
        count = cbor.expect_int(snapshot[3], "count")
        head = cbor.expect_bytes(snapshot[4], "head", 32)
        issued_at = cbor.expect_int(snapshot[5], "issued_at")
        entries = [RevocationEntry.decode(e) for e in raw_entries]
    except DecodeError as exc:
        raise CredentialError(_F.FEED_INVALID, str(exc)) from None
    if signer != authority:
        raise CredentialError(_F.FEED_INVALID, f"signed by {signer}, expected {authority}")
    try:
        identity = verify_history(history, now=now)
        if identity.identifier != authority:
            raise CredentialError(_F.FEED_INVALID, "the history is not the authority's")
        if known is not None:
            known(identity)
        verify_signed_by(
            identity, attestation, body, cbor.expect_bytes(signature, "sig", 64), at=issued_at
        )
    except (IdentityError, DecodeError) as exc:
        raise CredentialError(_F.FEED_INVALID, str(exc)) from None
    if issued_at > now + limits.MAX_CLOCK_SKEW_SECONDS:
        raise CredentialError(_F.FEED_INVALID, "issued in the future")
    heads = [feed_genesis(authority)]  # heads[i] = head after i entries
    for index, (entry, raw) in enumerate(zip(entries, raw_entries, strict=True)):
        if entry.seq != index:
            raise CredentialError(_F.FEED_INVALID, f"entry {index} has seq {entry.seq}")
        heads.append(next_head(heads[-1], raw))
    if count != len(entries) or heads[-1] != head:
        raise CredentialError(_F.FEED_INVALID, "entries do not match the signed head")
    if previous is not None:
        if previous.authority != authority:
            raise CredentialError(_F.FEED_INVALID, "held feed is another authority's")
        if count < previous.count or heads[previous.count] != previous.head:
            raise CredentialError(_F.FEED_ROLLBACK, f"held {previous.count} entries, got {count}")
        if issued_at < previous.issued_at:
            raise CredentialError(_F.FEED_ROLLBACK, "issued before the feed already held")
    feed = VerifiedFeed(
        authority,
        count,
        head,
        issued_at,
        tuple(entries),
        frozenset(e.target for e in entries if e.kind is RevocationKind.CREDENTIAL),
        frozenset(e.target for e in entries if e.kind is RevocationKind.IDENTITY),
        _VERIFIED,
    )
    feed.check_fresh(now=now, max_staleness=max_staleness)
    return feed
