"""The revocation feed v2: a signed, sequenced, append-only list of revocations by one authority,
read in pages (docs/formats.md, "Revocation feed").

    entry    = ["troth.revocation", 2, seq, kind, target (32), revoked_by (32), revoked_at,
                reason, extra]
               kind 1: target = a credential hash; 2: an identifier; 3 (superseded): an
               identifier, extra = [change count, hash of change count-1], reason "";
               extra = null for kinds 1-2
    head_0   = SHA-256("troth.revocation.feed/2" 0x00 authority identifier)
    head_n+1 = SHA-256(head_n || entry_n bytes)
    snapshot = ["troth.revocation.snapshot", 2, authority (32), count, head, latest, issued_at]
    page     = ["troth.revocation.page", 2, [snapshot body, signature, attestation], start,
                [entry bytes start..count), authority history]

A holder verifies each page from the head it already holds (at `start`) and keeps the result;
its feed is fresh only when it holds every entry the authority had (`count == latest`) as of a
recent `issued_at`. A page never exceeds `limits.MAX_FEED_PAGE_BYTES`, so no answer grows with
the feed. Revocation is permanent: an entry can never be removed.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any, Final

from troth import limits
from troth.crypto import sha256
from troth.encoding import cbor
from troth.errors import (
    CredentialError,
    CredentialFailure,
    DecodeError,
    DecodeProblem,
    IdentityError,
    OutOfRange,
    StorageError,
)
from troth.identity import (
    Checkpoint,
    Checkpoints,
    Identifier,
    Signer,
    VerifiedIdentity,
    verify_history,
    verify_signed_by,
)
from troth.storage import FeedRow

__all__ = [
    "FeedRow",
    "RevocationEntry",
    "RevocationKind",
    "Supersession",
    "VerifiedFeed",
    "build_feed",
    "build_page",
    "check_feed_age",
    "entry_cost",
    "feed_authority",
    "feed_checkpoints",
    "feed_from_store",
    "feed_genesis",
    "next_head",
    "page_entry_budget",
    "read_page_sequence",
    "store_rows",
    "verify_feed",
    "verify_page",
    "verify_pages",
    "write_page_sequence",
]

ENTRY_TYPE: Final = "troth.revocation"
SNAPSHOT_TYPE: Final = "troth.revocation.snapshot"
PAGE_TYPE: Final = "troth.revocation.page"
VERSION: Final = 2
_GENESIS: Final = b"troth.revocation.feed/2\x00"
_F = CredentialFailure
_VERIFIED: Final = object()
_PAGE_OVERHEAD: Final = 1024
"""Bytes of a page besides its entries and the authority history: header, start, the snapshot
(body ~130 bytes, signature, an attestation of at most 512 bytes) and CBOR headers."""


def check_feed_age(seconds: int, setting: str = "max_feed_age") -> int:
    """`seconds`, the oldest revocation feed a verifier accepts (`setting` names it in the
    error), if within 1 s and MAX_FEED_STALENESS_SECONDS; OutOfRange otherwise (review 36b,
    verify 1), TypeError for what is not an int (a bool included). Every function judging a
    feed's freshness checks it (`VerifiedFeed.check_fresh`, `feed_checkpoints`: review 36d,
    feed age 1)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise TypeError(f"{setting} is a number of seconds, not {type(seconds).__name__}")
    if not 1 <= seconds <= limits.MAX_FEED_STALENESS_SECONDS:
        raise OutOfRange(
            setting,
            seconds,
            1,
            limits.MAX_FEED_STALENESS_SECONDS,
            "seconds: the oldest revocation feed accepted",
        )
    return seconds


class RevocationKind(enum.IntEnum):
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
        if not 2 <= self.changes <= limits.MAX_CHANGE_INDEX + 1:
            raise ValueError(f"a supersession names 2-{limits.MAX_CHANGE_INDEX + 1} changes")
        if len(self.change_hash) != 32:
            raise ValueError("a supersession names a 32-byte change hash")


@dataclass(frozen=True, slots=True)
class RevocationEntry:
    seq: int
    kind: RevocationKind
    target: bytes
    revoked_by: Identifier
    revoked_at: int
    reason: str
    extra: Supersession | None = None

    def __post_init__(self) -> None:
        if len(self.target) != 32:
            raise ValueError(f"a {self.kind.name.lower()} revocation names 32 bytes")
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
    return sha256(_GENESIS + authority.digest)


def next_head(head: bytes, entry: bytes) -> bytes:
    return sha256(head + entry)


# -- building pages (the authority) ----------------------------------------------------------


def page_entry_budget(history: bytes) -> int:
    """Bytes the entries of one page may take (each costs `entry_cost`) so that the page,
    carrying `history`, stays within MAX_FEED_PAGE_BYTES."""
    return limits.MAX_FEED_PAGE_BYTES - _PAGE_OVERHEAD - len(history)


def entry_cost(entry: bytes) -> int:
    """What one entry adds to a page, exactly: its length and its CBOR byte-string header
    (1 to 9 bytes by size; review 45j, feed cost 1: 3 for all left pages short)."""
    n = len(entry)
    return n + (
        1 if n < 24 else 2 if n < 1 << 8 else 3 if n < 1 << 16 else 5 if n >> 32 == 0 else 9
    )


def build_page(
    signer: Signer, entries: Sequence[bytes], *, start: int, head: bytes, latest: int, now: int
) -> bytes:
    """The authority signs a snapshot ending after `entries` (entries start..start+n, encoded,
    in order; `head` is the head after them) and saying the feed held `latest` entries at
    `now`. ValueError if the page would exceed MAX_FEED_PAGE_BYTES (the caller picks entries
    within `page_entry_budget`)."""
    count = start + len(entries)
    if latest < count:
        raise ValueError("a page cannot end after the feed's latest entry")
    authority = signer.identity.identifier
    body = cbor.encode([SNAPSHOT_TYPE, VERSION, authority.digest, count, head, latest, now])
    snapshot = [body, signer.sign(body), signer.attestation]
    page = cbor.encode(
        [PAGE_TYPE, VERSION, snapshot, start, list(entries), signer.identity.history]
    )
    if len(page) > limits.MAX_FEED_PAGE_BYTES:
        raise ValueError(f"a page of {len(page)} bytes is over {limits.MAX_FEED_PAGE_BYTES}")
    return page


def build_feed(signer: Signer, entries: Sequence[bytes], head: bytes, *, now: int) -> bytes:
    """A one-page feed: every entry from the first, `head` after them (small feeds, tests)."""
    return build_page(signer, entries, start=0, head=head, latest=len(entries), now=now)


# -- what a holder knows: an append-only index shared along one line of growth ---------------


class _Index:
    """Targets of the entries verified so far, each with its sequence number, so that every
    `VerifiedFeed` built on this index sees exactly its own first `count` entries."""

    __slots__ = ("count", "credentials", "identities", "superseded")

    def __init__(self) -> None:
        self.count = 0
        self.credentials: dict[bytes, int] = {}
        self.identities: dict[bytes, int] = {}
        self.superseded: dict[bytes, list[tuple[int, int, bytes]]] = {}

    def add(
        self, seq: int, kind: int, target: bytes, changes: int | None, change_hash: bytes | None
    ) -> None:
        if kind == RevocationKind.CREDENTIAL:
            self.credentials.setdefault(target, seq)
        elif kind == RevocationKind.IDENTITY:
            self.identities.setdefault(target, seq)
        elif changes is not None and change_hash is not None:
            self.superseded.setdefault(target, []).append((seq, changes, change_hash))
        self.count = seq + 1

    def prefix(self, count: int) -> _Index:
        """A copy holding only the first `count` entries (to grow another line from there)."""
        copy = _Index()
        copy.count = count
        copy.credentials = {t: s for t, s in self.credentials.items() if s < count}
        copy.identities = {t: s for t, s in self.identities.items() if s < count}
        for target, rows in self.superseded.items():
            kept = [row for row in rows if row[0] < count]
            if kept:
                copy.superseded[target] = kept
        return copy


class _Revoked(Set[bytes]):
    """The targets revoked within a feed's first `count` entries (set-like: `in`, iteration)."""

    __slots__ = ("_count", "_seqs")

    def __init__(self, seqs: dict[bytes, int], count: int) -> None:
        self._seqs = seqs
        self._count = count

    def __contains__(self, target: object) -> bool:
        seq = self._seqs.get(target)  # type: ignore[call-overload]
        return seq is not None and seq < self._count

    def __iter__(self) -> Iterator[bytes]:
        count = self._count
        return (target for target, seq in list(self._seqs.items()) if seq < count)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(frozen=True, slots=True, eq=False)
class VerifiedFeed:
    """The first `count` entries of `authority`'s feed, verified (hash chain to a signed head).
    `latest` is how many entries the feed had at `issued_at` (the page's signed date, or when
    the holder accepted the page if that was earlier: `verify_page`): the holder is up to date
    only when `count == latest`. `new_entries` are the entries the last verified page added."""

    authority: Identifier
    count: int
    head: bytes
    latest: int
    issued_at: int
    new_entries: tuple[RevocationEntry, ...] = field(repr=False)
    _index: _Index = field(repr=False)
    _token: object = field(repr=False)

    def __post_init__(self) -> None:
        if self._token is not _VERIFIED:
            raise TypeError("VerifiedFeed is made by verify_page or feed_from_store")

    @property
    def revoked_credentials(self) -> Set[bytes]:
        """Hashes of the revoked credentials (set-like)."""
        return _Revoked(self._index.credentials, self.count)

    @property
    def revoked_identities(self) -> Set[bytes]:
        """Digests of the revoked identities (set-like)."""
        return _Revoked(self._index.identities, self.count)

    def credential_revoked(self, credential_hash: bytes) -> bool:
        """Whether this feed revokes the credential with this hash (one hash-table look-up)."""
        seq = self._index.credentials.get(credential_hash)
        return seq is not None and seq < self.count

    def identity_revoked(self, digest: bytes) -> bool:
        """Whether this feed revokes the identity with this identifier digest."""
        seq = self._index.identities.get(digest)
        return seq is not None and seq < self.count

    @property
    def complete(self) -> bool:
        """Whether this holds every entry the feed had at `issued_at`."""
        return self.count == self.latest

    def supersession(self, identifier: Identifier) -> Supersession | None:
        """The newest supersession of `identifier` in this feed, if any."""
        rows = self._index.superseded.get(identifier.digest)
        for seq, changes, change_hash in reversed(rows or ()):
            if seq < self.count:
                return Supersession(changes, change_hash)
        return None

    def check_fresh(self, *, now: int, max_staleness: int) -> None:
        """Raise STALE_FEED unless the holder has every entry as of at most `max_staleness`
        seconds ago (1 s to MAX_FEED_STALENESS_SECONDS, else OutOfRange: `check_feed_age`)."""
        check_feed_age(max_staleness, "max_staleness")
        if self.count < self.latest:
            raise CredentialError(
                _F.STALE_FEED, f"holds {self.count} of {self.latest} entries: sync incomplete"
            )
        if now - self.issued_at > max_staleness:
            raise CredentialError(
                _F.STALE_FEED, f"issued {now - self.issued_at} s ago, limit {max_staleness} s"
            )

    def check_current(self, identity: VerifiedIdentity) -> None:
        """Raise SUPERSEDED when the feed says the identity has at least N changes and
        `identity` has fewer, or its change N-1 is another one (a stolen backup's history).
        Compared by change index, so `identity` may be a checkpointed suffix: one starting
        right after change N-1 must name it as its first change's previous; one starting
        later cannot show that it descends from change N-1 (another authority's checkpoint
        may attest a stolen backup's fork) and is refused (docs/formats.md, "Checkpointed
        histories")."""
        superseded = self.supersession(identity.identifier)
        if superseded is not None:
            check_supersession(identity, superseded)

    def binds(self, identity: VerifiedIdentity) -> bool:
        """Whether this feed ties `identity`'s presented history to its identifier, once
        `check_current` passed: a history from change 0 is tied by its first change's hash; a
        checkpointed one only when a supersession here names one of its changes (its first
        change's link is its checkpoint authority's word, which counts for that authority's
        chains only: review 23a, checkpoints 1-2)."""
        if identity.first_index == 0:
            return True
        superseded = self.supersession(identity.identifier)
        return superseded is not None and superseded.changes - 1 >= identity.first_index

    def attests(self, identifier: bytes, index: int, change_hash: bytes) -> bool:
        """Whether a supersession in this feed names change `index` of `identifier` with
        `change_hash` (the checkpoint of a history presented from that change)."""
        rows = self._index.superseded.get(identifier)
        for seq, changes, named in reversed(rows or ()):  # the newest is the usual checkpoint
            if seq < self.count and changes == index + 1:
                return named == change_hash
        return False

    def ever_named(self, identifier: bytes, index: int, change_hash: bytes) -> bool:
        """Whether any supersession in this feed, not only the newest at that index (`attests`),
        names change `index` of `identifier` with `change_hash`: the authority gave its word on
        that change once, whatever it said after (review 26b, refuted 1)."""
        rows = self._index.superseded.get(identifier)
        return any(
            seq < self.count and changes == index + 1 and named == change_hash
            for seq, changes, named in rows or ()
        )


def feed_checkpoints(
    feeds: Mapping[Identifier, VerifiedFeed], *, now: int, max_staleness: int
) -> Checkpoints:
    """`verify_history(checkpoints=...)` backed by held feeds: a checkpointed history is
    accepted when a held feed, complete and fresh (at most `max_staleness` seconds old at
    `now`), has a supersession naming the first change presented: the feed of the authority
    its checkpoint names, else any other held (docs/formats.md, "Checkpointed histories"). The
    owner presents one history to every verifier, cut at one authority's checkpoint; another
    authority naming the same change attests it as well (the owner could have named that one
    instead: nothing more is accepted), so a member of two authorities verifies for a verifier
    trusting either (review 24a, two authorities 1). `max_staleness`: 1 s to
    MAX_FEED_STALENESS_SECONDS, else OutOfRange (`check_feed_age`; review 36d, feed age 1)."""
    check_feed_age(max_staleness, "max_staleness")

    def fresh_attests(feed: VerifiedFeed | None, checkpoint: Checkpoint, change: bytes) -> bool:
        if feed is None or not feed.complete or now - feed.issued_at > max_staleness:
            return False
        return feed.attests(checkpoint.identifier, checkpoint.index, change)

    def attested(checkpoint: Checkpoint, change_hash: bytes) -> bool:
        named = Identifier(checkpoint.authority)
        if fresh_attests(feeds.get(named), checkpoint, change_hash):
            return True
        return any(
            fresh_attests(feed, checkpoint, change_hash)
            for authority, feed in feeds.items()
            if authority != named
        )

    return attested


def _feed(
    authority: Identifier,
    count: int,
    head: bytes,
    latest: int,
    issued_at: int,
    new_entries: tuple[RevocationEntry, ...],
    index: _Index,
) -> VerifiedFeed:
    return VerifiedFeed(authority, count, head, latest, issued_at, new_entries, index, _VERIFIED)


def feed_from_store(
    authority: Identifier,
    *,
    count: int,
    head: bytes,
    latest: int,
    issued_at: int,
    rows: Iterable[FeedRow],
    previous: VerifiedFeed | None = None,
) -> VerifiedFeed:
    """Rebuild a holder's feed from its own store, whose entries it verified when it stored
    them (so nothing is verified again): `rows` are the entries after `previous` (or all),
    in order. For the holder's store only, never for bytes from elsewhere."""
    if previous is not None and previous.count == previous._index.count:
        index = previous._index
    else:
        index = _Index() if previous is None else previous._index.prefix(previous.count)
    for seq, kind, target, changes, change_hash in rows:
        index.add(seq, kind, target, changes, change_hash)
    if index.count != count:
        raise StorageError(f"the store holds {index.count} feed entries, its state says {count}")
    return _feed(authority, count, head, latest, issued_at, (), index)


def store_rows(feed: VerifiedFeed) -> list[FeedRow]:
    """The rows a holder stores for the entries a page added."""
    return [
        (
            e.seq,
            int(e.kind),
            e.target,
            None if e.extra is None else e.extra.changes,
            None if e.extra is None else e.extra.change_hash,
        )
        for e in feed.new_entries
    ]


# -- verifying pages (a holder) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Page:
    """A page decoded, nothing verified."""

    body: bytes
    signature: bytes
    attestation: bytes
    authority: Identifier
    count: int
    head: bytes
    latest: int
    issued_at: int
    start: int
    raw_entries: list[bytes]
    history: bytes


def _decode_page(data: bytes) -> _Page:
    """Decode a page's structure (formats.md, "Revocation feed"). Raises only DecodeError."""
    value = cbor.expect_array(cbor.decode(data, max_bytes=limits.MAX_FEED_PAGE_BYTES), "page")
    cbor.expect_header(value, PAGE_TYPE, VERSION, "page")
    if len(value) != 6:
        raise DecodeError("page: expected 6 elements")
    body, signature, attestation = cbor.expect_array(value[2], "snapshot", 3)
    body = cbor.expect_bytes(body, "snapshot")
    snapshot = cbor.expect_array(cbor.decode(body, max_bytes=1024), "snapshot", 7)
    cbor.expect_header(snapshot, SNAPSHOT_TYPE, VERSION, "snapshot")
    raw_entries = [cbor.expect_bytes(e, "entry") for e in cbor.expect_array(value[4], "entries")]
    page = _Page(
        body,
        cbor.expect_bytes(signature, "signature", 64),
        cbor.expect_bytes(attestation, "attestation"),
        Identifier(cbor.expect_bytes(snapshot[2], "authority", 32)),
        cbor.expect_int(snapshot[3], "count"),
        cbor.expect_bytes(snapshot[4], "head", 32),
        cbor.expect_int(snapshot[5], "latest"),
        cbor.expect_int(snapshot[6], "issued_at"),
        cbor.expect_int(value[3], "start"),
        raw_entries,
        cbor.expect_bytes(value[5], "authority history"),
    )
    if max(page.count, page.latest) > limits.MAX_FEED_ENTRIES:
        raise DecodeError("page: more entries than a feed may hold", DecodeProblem.OVER_LIMIT)
    return page


def feed_authority(data: bytes) -> Identifier:
    """The authority a page claims to be from (unverified: pass it to verify_page)."""
    try:
        return _decode_page(data).authority
    except DecodeError as exc:
        raise CredentialError(_F.FEED_INVALID, str(exc)) from None


def check_supersession(identity: VerifiedIdentity, superseded: Supersession) -> None:
    """Raise SUPERSEDED unless `identity` holds change `superseded.changes - 1` with its hash
    (directly, or as its first change's previous: a checkpointed suffix); see
    `VerifiedFeed.check_current`."""
    n = superseded.changes
    count = identity.change_count
    offset = n - 1 - identity.first_index
    if count < n:
        detail = "fewer changes"
    elif offset >= 0:
        if identity.changes[offset].change_hash == superseded.change_hash:
            return
        detail = "another change"
    elif offset == -1:
        if identity.changes[0].body.previous == superseded.change_hash:
            return
        detail = f"change {n} does not follow it"
    else:
        detail = (
            f"the history presented starts at change {identity.first_index}, after a gap: "
            f"present it from change {n - 1} or earlier"
        )
    raise CredentialError(
        _F.SUPERSEDED,
        f"{identity.identifier}: {count} change(s) presented, the authority knows "
        f"change {n - 1}: {detail}",
    )


def _held_or(
    previous: VerifiedFeed | None, authority: Identifier, checkpoints: Checkpoints | None
) -> Checkpoints:
    """A checkpoint of the authority's own history attested by the feed already held (entries
    verified before this page), else by `checkpoints`."""

    def attested(checkpoint: Checkpoint, change_hash: bytes) -> bool:
        own = checkpoint.identifier == checkpoint.authority == authority.digest
        if (
            own
            and previous is not None
            and previous.attests(checkpoint.identifier, checkpoint.index, change_hash)
        ):
            return True
        return checkpoints is not None and checkpoints(checkpoint, change_hash)

    return attested


def _own_supersession(
    authority: Identifier, entries: Sequence[RevocationEntry], previous: VerifiedFeed | None
) -> Supersession | None:
    """The newest supersession of the authority's own history: in this page, else held."""
    for entry in reversed(entries):
        if entry.kind is RevocationKind.SUPERSEDED and entry.target == authority.digest:
            return entry.extra
    return None if previous is None else previous.supersession(authority)


def verify_page(
    data: bytes,
    *,
    authority: Identifier,
    now: int,
    previous: VerifiedFeed | None = None,
    known: Callable[[VerifiedIdentity], None] | None = None,
    checkpoints: Checkpoints | None = None,
) -> VerifiedFeed:
    """Verify one page by `authority` that extends `previous` (the feed held, else nothing):
    signed by the authority, starting where `previous` ends, its entries numbered on from
    there and hashing from `previous.head` to the signed head, not issued before `previous`.
    Freshness is not checked (a page in the middle of a sync is not fresh): see check_fresh.
    The feed's `issued_at` is min(the signed date, `now`): a page dated ahead counts as issued
    when accepted (review 45j, freshness 1); a rollback compares the signed date with it.
    `known` raises IdentityError when the page's authority history forks from or rolls back
    a copy the caller stored. An authority past 64 changes presents its history from a
    checkpoint of its own feed: accepted when the feed held (`previous`) names that change of
    the authority, or `checkpoints` (the caller's stored copy) attests it."""
    try:
        page = _decode_page(data)
        entries = tuple(RevocationEntry.decode(e) for e in page.raw_entries)
    except DecodeError as exc:
        raise CredentialError(_F.FEED_INVALID, str(exc)) from None
    if page.authority != authority:
        raise CredentialError(_F.FEED_INVALID, f"signed by {page.authority}, expected {authority}")
    try:
        identity = verify_history(
            page.history, now=now, checkpoints=_held_or(previous, authority, checkpoints)
        )
        if identity.identifier != authority:
            raise CredentialError(_F.FEED_INVALID, "the history is not the authority's")
        verify_signed_by(identity, page.attestation, page.body, page.signature, at=page.issued_at)
        if known is not None:  # once the page is known to be the authority's
            known(identity)
    except IdentityError as exc:
        raise CredentialError(_F.FEED_INVALID, str(exc)) from None
    if page.issued_at > now + limits.MAX_CLOCK_SKEW_SECONDS:
        raise CredentialError(_F.FEED_INVALID, "issued in the future")
    if previous is not None and previous.authority != authority:
        raise CredentialError(_F.FEED_INVALID, "the held feed is another authority's")
    held = 0 if previous is None else previous.count
    if page.start != held:
        raise CredentialError(
            _F.FEED_INVALID, f"the page starts at entry {page.start}, {held} are held"
        )
    head = feed_genesis(authority) if previous is None else previous.head
    for offset, (entry, raw) in enumerate(zip(entries, page.raw_entries, strict=True)):
        if entry.seq != held + offset:
            raise CredentialError(_F.FEED_INVALID, f"entry {held + offset} has seq {entry.seq}")
        head = next_head(head, raw)
    if page.count != held + len(entries) or head != page.head:
        raise CredentialError(_F.FEED_INVALID, "the entries do not hash to the signed head")
    if page.latest < page.count:
        raise CredentialError(_F.FEED_INVALID, "the snapshot ends after the feed's latest entry")
    if previous is not None and (
        page.issued_at < previous.issued_at or page.latest < previous.latest
    ):
        raise CredentialError(_F.FEED_ROLLBACK, "issued before the feed already held")
    own = _own_supersession(authority, entries, previous)
    if own is not None:  # a page signed under a history the feed itself says is superseded
        try:
            check_supersession(identity, own)
        except CredentialError as exc:
            raise CredentialError(
                _F.FEED_INVALID, f"signed under a superseded history of the authority: {exc}"
            ) from None
    # every check passed: grow the index (in place when `previous` is its newest view)
    if previous is None:
        index = _Index()
    elif previous.count == previous._index.count:
        index = previous._index
    else:
        index = previous._index.prefix(previous.count)
    for entry in entries:
        extra = entry.extra
        index.add(
            entry.seq,
            entry.kind,
            entry.target,
            None if extra is None else extra.changes,
            None if extra is None else extra.change_hash,
        )
    issued_at = min(page.issued_at, now)  # fresh no longer than max_staleness from `now`
    return _feed(authority, page.count, head, page.latest, issued_at, entries, index)


def verify_pages(
    pages: Iterable[bytes],
    *,
    authority: Identifier,
    now: int,
    previous: VerifiedFeed | None = None,
    known: Callable[[VerifiedIdentity], None] | None = None,
    checkpoints: Checkpoints | None = None,
) -> VerifiedFeed:
    """Verify consecutive pages (e.g. a feed file) from `previous` (else from the first
    entry). Freshness is not checked."""
    feed = previous
    for page in pages:
        feed = verify_page(
            page,
            authority=authority,
            now=now,
            previous=feed,
            known=known,
            checkpoints=checkpoints,
        )
    if feed is None:
        raise CredentialError(_F.FEED_INVALID, "no page")
    return feed


def verify_feed(
    data: bytes,
    *,
    authority: Identifier,
    now: int,
    max_staleness: int,
    previous: VerifiedFeed | None = None,
    known: Callable[[VerifiedIdentity], None] | None = None,
    checkpoints: Checkpoints | None = None,
) -> VerifiedFeed:
    """`verify_page`, then `check_fresh`: the page completes the feed as of a recent time."""
    feed = verify_page(
        data,
        authority=authority,
        now=now,
        previous=previous,
        known=known,
        checkpoints=checkpoints,
    )
    feed.check_fresh(now=now, max_staleness=max_staleness)
    return feed


# -- feed files: a CBOR sequence (RFC 8742) of byte strings, each holding one page ----------

_LENGTH_BYTES: Final = {24: 1, 25: 2, 26: 4}  # byte string headers of 24 .. 2**32-1 bytes


def write_page_sequence(pages: Iterable[bytes]) -> Iterator[bytes]:
    """Each page as the CBOR byte string that carries it in a feed file."""
    return (cbor.encode(page) for page in pages)


def read_page_sequence(read: Callable[[int], bytes]) -> Iterator[bytes]:
    """The pages of a feed file, one at a time (`read(n)` returns up to n bytes, b"" at the
    end). Each item's size is known from its header before it is read, and no item may exceed
    MAX_FEED_PAGE_BYTES; each is then decoded by the strict decoder. Raises DecodeError."""
    while True:
        initial = read(1)
        if not initial:
            return
        size = _LENGTH_BYTES.get(initial[0] - 0x40)  # major type 2 (byte string)
        if size is None:
            raise DecodeError("feed file: each item must be a byte string holding a page")
        length_bytes = read(size)
        if len(length_bytes) != size:
            raise DecodeError("feed file: truncated")
        length = int.from_bytes(length_bytes, "big")
        if length > limits.MAX_FEED_PAGE_BYTES:
            raise DecodeError(
                f"feed file: a page over {limits.MAX_FEED_PAGE_BYTES} bytes",
                DecodeProblem.OVER_LIMIT,
            )
        item = initial + length_bytes + read(length)
        yield cbor.expect_bytes(
            cbor.decode(item, max_bytes=limits.MAX_FEED_PAGE_BYTES + 5), "feed file page"
        )
