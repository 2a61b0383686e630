"""Revocation feed pages, built by the authority, and feed files (docs/formats.md, "Revocation
feed": "Pages" and "Feed files").

    snapshot = ["troth.revocation.snapshot", 2, authority (32), count, head, latest, issued_at]
    page     = ["troth.revocation.page", 2, [snapshot body, signature, attestation], start,
                [entry bytes start..count), authority history]

A page never exceeds `limits.MAX_FEED_PAGE_BYTES`: the authority picks the entries that fit
(`page_entry_budget`, `entry_cost`). A feed file is a CBOR sequence (RFC 8742) of byte strings,
each holding one page. Pages are verified in troth.credentials.revocation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final

from troth import limits
from troth.credentials.revocation_entry import PAGE_TYPE, SNAPSHOT_TYPE, VERSION
from troth.encoding import cbor
from troth.errors import DecodeError, DecodeProblem
from troth.identity import Signer

__all__ = [
    "build_feed",
    "build_page",
    "entry_cost",
    "page_entry_budget",
    "read_page_sequence",
    "write_page_sequence",
]

_PAGE_OVERHEAD: Final = 1024
"""Bytes of a page besides its entries and the authority history: header, start, the snapshot
(body ~130 bytes, signature, an attestation of at most 512 bytes) and CBOR headers."""


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
