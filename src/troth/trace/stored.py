"""What the trace log holds, as its readers get it: stored records and their disclosures (not
verified: troth.trace.verify does that), and the perfect-subtree hashes the Merkle proofs are
made of (RFC 9162 §2.1, from the stored leaves and the node rows of troth.trace.store)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Final

from troth import limits
from troth.errors import StorageError, TraceError, TraceFailure
from troth.identity import Identifier
from troth.storage import SqliteDatabase
from troth.trace.merkle import node_hash
from troth.trace.record import REDACTABLE, Disclosure
from troth.trace.store import NODE_LEVEL_STRIDE

__all__ = [
    "STORED_DIGEST_BYTES",
    "STORED_DISCLOSURES_BYTES",
    "StoredEntry",
    "StoredRecord",
    "SubtreeReader",
    "decode_disclosures",
    "history_windows",
    "stored_bytes",
    "stored_column",
    "stored_identifier",
    "stored_text",
    "stored_text_column",
    "windows_of",
]

_F = TraceFailure

STORED_DISCLOSURES_BYTES: Final = 3 * len(REDACTABLE) * limits.MAX_TRACE_DISCLOSURE_BYTES + 1024
"""The most a record's stored disclosures take (`encode_disclosures`): each redactable field's
value, canonical JSON of at most MAX_TRACE_DISCLOSURE_BYTES, kept as an ASCII JSON string (a
byte of it at most 3: a 2-byte character as a 6-byte escape), its name and salt. A row past it
is no record's (review 69m, verify 1: it is not fetched, `stored_column`)."""


STORED_DIGEST_BYTES: Final = 64
"""The most of a leaf hash or agent digest column (32 bytes) fetched: one a little longer is
still read, and refused MALFORMED for its length (review 69s, wave2 1); so too the digests
keying the rows kept beside the records: a history's (window's) identifier, a chain's
digest, and a keyid's characters (64 hex digits; review 69x, wave4c 4)."""


def stored_column(column: str, most: int) -> str:
    """The SQL that reads a BLOB `column` of a row as `stored_bytes` takes it: its type, then
    its bytes, NULL when they are past `most` (their length read from the row's header, the
    value's overflow pages not fetched): a crafted trace.db's row of a few GB was fetched whole,
    twice, before it was refused (review 69m, verify 1). NULL too when it is not a BLOB, whose
    type is read first: `length()` of TEXT counts its characters up to its first NUL (0 for
    a TEXT of 200 MB beginning with one, fetched whole: review 69s, wave2 1)."""
    return (
        f"typeof({column}), CASE WHEN typeof({column}) = 'blob' "
        f"AND length({column}) <= {int(most)} THEN {column} END"
    )


def stored_text_column(column: str, most: int) -> str:
    """The SQL that reads a TEXT `column` (a record id, a keyid) as `stored_text` takes it: its
    type, then its bytes, NULL unless it is TEXT of at most `most` characters without a NUL
    (`length()` stops at the first: a TEXT of 200 MB beginning with one was fetched whole;
    review 69s, wave2 1). (SQLite 3.40 has no `octet_length`: the value is loaded in SQLite
    to be measured, never handed to Python.)"""
    return (
        f"typeof({column}), CASE WHEN typeof({column}) = 'text' "
        f"AND length({column}) <= {int(most)} AND instr({column}, char(0)) = 0 "
        f"THEN CAST({column} AS BLOB) END"
    )


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as the log holds it (not verified: `troth.trace.verify` does that)."""

    index: int
    envelope: bytes
    leaf: bytes


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """A stored record and its disclosures, as `TraceLog.stored` reads them."""

    index: int
    record_id: str
    envelope: bytes
    leaf: bytes
    disclosure_data: bytes | None
    agent: bytes | None = None
    """The agent digest the record is filed under (ids are per agent); None: not read."""

    def disclosures(self) -> dict[str, Disclosure]:
        """The disclosures kept with the record (TraceError MALFORMED if they do not decode)."""
        return decode_disclosures(self.disclosure_data)


def stored_bytes(kind: str, value: object, what: str, *, index: int | None = None) -> bytes:
    """A BLOB column's value, read as `typeof(c), CAST(c AS BLOB)` (a crafted file may hold
    any type in any column: TEXT that is not UTF-8 cannot even be fetched as text, and an
    INTEGER n must not become `bytes(n)`); TraceError MALFORMED (at `index`, a record's)
    naming `what` when the log file holds another type there (review 27t, verify 2);
    TraceError OVER_LIMIT when it was past its bound, so not read (`stored_column`)."""
    if value is None and kind == "blob":
        raise TraceError(_F.OVER_LIMIT, f"the stored {what} is past its limit", index=index)
    if kind != "blob" or type(value) is not bytes:
        raise TraceError(_F.MALFORMED, f"the stored {what} is not bytes ({kind})", index=index)
    return value


def stored_text(kind: str, value: object, what: str, *, index: int | None = None) -> str:
    """A TEXT column's value read as `stored_bytes` reads a BLOB (so invalid UTF-8 is no crash);
    TraceError MALFORMED naming `what` otherwise."""
    try:
        if kind != "text" or type(value) is not bytes:
            raise ValueError(kind)
        return value.decode("utf-8")
    except ValueError:
        raise TraceError(_F.MALFORMED, f"the stored {what} is not text", index=index) from None


def stored_identifier(kind: str, value: object, what: str) -> Identifier:
    """An identifier column read as `stored_bytes` reads it; TraceError MALFORMED naming `what`
    unless it is a 32-byte digest (review 27t, verify 3)."""
    try:
        return Identifier(stored_bytes(kind, value, what))
    except ValueError as exc:
        raise TraceError(_F.MALFORMED, f"the stored {what}: {exc}") from None


def decode_disclosures(data: bytes | None) -> dict[str, Disclosure]:
    if data is None:
        return {}
    try:
        value = json.loads(data)
        if type(value) is not dict or not set(value) <= set(REDACTABLE):
            raise ValueError("not a map of redactable fields")
        return {
            name: Disclosure(bytes.fromhex(salt), text.encode())
            for name, (salt, text) in value.items()
        }
    except (ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise TraceError(_F.MALFORMED, f"stored disclosures: {exc}") from None


_LEAF_HASHES: Final = (
    "SELECT CASE WHEN typeof(leaf) = 'blob' AND length(leaf) = 32 THEN leaf END "
    "FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx"
)
_NODE_HASHES: Final = (
    "SELECT CASE WHEN typeof(hash) = 'blob' AND length(hash) = 32 THEN hash END "
    "FROM nodes WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx"
)
"""The leaf and node hashes a proof reads: 32-byte BLOBs, else NULL, their bytes not fetched
(a crafted trace.db's 8 MiB leaf was fetched and put in a proof: review 69s, wave2 1)."""


class SubtreeReader:
    """Perfect-subtree hashes read from the stored leaves and nodes (cached per use)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._cache: dict[tuple[int, int], bytes] = {}

    def perfect(self, level: int, index: int) -> bytes:
        key = (level, index)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        base = level - level % NODE_LEVEL_STRIDE
        span = level - base
        first, count = index << span, 1 << span
        params: tuple[int, ...] = (first, first + count)
        sql = _LEAF_HASHES if base == 0 else _NODE_HASHES
        if base:
            params = (base, *params)
        hashes: list[bytes] = [r[0] for r in self._conn.execute(sql, params).fetchall()]
        if len(hashes) != count or not all(type(h) is bytes for h in hashes):
            raise StorageError(
                f"trace log damaged: subtree ({level}, {index}) is incomplete or not hashes"
            )
        while len(hashes) > 1:
            hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
        self._cache[key] = hashes[0]
        return hashes[0]


_KEY: Final = stored_column("identifier", STORED_DIGEST_BYTES)
"""A signer's digest keying a kept row, not fetched past its bound (review 69x, wave4c 4)."""
_WINDOW: Final = stored_column("history", limits.MAX_IDENTITY_HISTORY_BYTES)
"""A history window, not fetched past what a history decodes from (review 69m, verify 1)."""


def windows_of(store: SqliteDatabase, identifier: Identifier) -> list[bytes]:
    """`identifier`'s older histories its newest one no longer holds, oldest first (one
    signer's rows of `history_windows`)."""
    sql = (
        f"SELECT {_WINDOW} FROM history_windows "  # noqa: S608
        "WHERE identifier = ? ORDER BY last"
    )
    return [
        stored_bytes(kind, history, "history window")
        for kind, history in store.fetch_all(sql, (identifier.digest,))
    ]


def history_windows(store: SqliteDatabase) -> dict[Identifier, list[bytes]]:
    """Per signer, the older histories its newest one no longer holds (`history_windows`, the
    trace log's table), oldest first."""
    windows: dict[Identifier, list[bytes]] = {}
    sql = (
        f"SELECT {_KEY}, {_WINDOW} "  # noqa: S608
        "FROM history_windows "
        "ORDER BY identifier, last"
    )
    for id_kind, identifier, kind, history in store.fetch_all(sql):
        who = stored_identifier(id_kind, identifier, "history window identifier")
        windows.setdefault(who, []).append(stored_bytes(kind, history, "history window"))
    return windows
