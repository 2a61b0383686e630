"""The revocation feed v2: a signed, sequenced, append-only list of revocations by one authority,
read in pages (docs/formats.md, "Revocation feed"): entries chained by hash from a genesis head
(troth.credentials.revocation_entry), and pages each carrying a snapshot the authority signs
for the count and head at its end, the entries from `start` and the authority's history
(troth.credentials.revocation_pages, which builds them).

A holder verifies each page from the head it already holds (at `start`) and keeps the result
(`VerifiedFeed`, troth.credentials.revocation_held); its feed is fresh only when it holds every
entry the authority had (`count == latest`) as of a recent `issued_at`. A page never exceeds
`limits.MAX_FEED_PAGE_BYTES`, so no answer grows with the feed. Revocation is permanent: an
entry can never be removed.

This module decodes and verifies pages (`verify_page`, `verify_pages`, `verify_feed`); every
name of the modules above that was defined here before they were split off is importable from
here as well.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from troth import limits
from troth.credentials.revocation_entry import (
    ENTRY_TYPE as ENTRY_TYPE,
)
from troth.credentials.revocation_entry import (
    PAGE_TYPE,
    SNAPSHOT_TYPE,
    VERSION,
    RevocationEntry,
    RevocationKind,
    Supersession,
    feed_genesis,
    next_head,
)
from troth.credentials.revocation_held import (
    FeedRow,
    VerifiedFeed,
    _feed,
    _index_after,
    check_feed_age,
    check_supersession,
    feed_checkpoints,
    feed_from_store,
    store_rows,
)
from troth.credentials.revocation_pages import (
    _PAGE_OVERHEAD as _PAGE_OVERHEAD,
)
from troth.credentials.revocation_pages import (
    build_feed,
    build_page,
    entry_cost,
    page_entry_budget,
    read_page_sequence,
    write_page_sequence,
)
from troth.encoding import cbor
from troth.errors import (
    CredentialError,
    CredentialFailure,
    DecodeError,
    DecodeProblem,
    IdentityError,
)
from troth.identity import (
    Checkpoint,
    Checkpoints,
    Identifier,
    VerifiedIdentity,
    verify_history,
    verify_signed_by,
)

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

_F = CredentialFailure


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
    index = _index_after(previous)  # every check passed: grow the index
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
    entry). Freshness is not checked. A page that adds no entry after another that added none
    is refused: each page's signature is checked, and copies of a page that adds nothing (the
    one page of an authority that revoked nothing) made a file verified without end (a FIFO)
    or for hours (a 2 GiB file; review 55g, cli 12)."""
    feed = previous
    idle = 0  # pages in a row that added no entry
    for page in pages:
        before = None if feed is None else feed.count
        feed = verify_page(
            page,
            authority=authority,
            now=now,
            previous=feed,
            known=known,
            checkpoints=checkpoints,
        )
        idle = idle + 1 if feed.count == before else 0
        if idle > 1:
            raise CredentialError(
                _F.FEED_INVALID, "a page that adds no entry follows another that added none"
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
