"""The `vouchers` table over SQLite (troth.storage.base.VoucherStore; docs/storage.md,
"Vouchers")."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager

from troth.storage.base import VoucherRow
from troth.storage.row_types import blob_sql, stored_blob, stored_whole, whole_sql
from troth.storage.sqlite import SqliteDatabase

__all__ = ["SqliteVoucherStore"]

_DIGEST_BYTES = 64  # an identifier, a change hash: 32 bytes (one a little longer still read)
_LAPSED = (
    f"SELECT {blob_sql('identifier', _DIGEST_BYTES)}, {whole_sql('expires_at')} "  # noqa: S608
    "FROM vouchers WHERE authority = ? AND kept = 0 AND expires_at <= ?"
)
_OLDEST = " ORDER BY expires_at LIMIT ?"
_FORGET = "DELETE FROM vouchers WHERE identifier = ? AND authority = ? AND expires_at = ?"
# a later expiry renews the row (its member, and a sweep judges it again); an older `since`
# (a lower index, or NULL: any history) widens it, never the other way (docs/storage.md)
_ROWS = (  # each column typed and bounded (review 71c, rows 8: `bytes()` of TEXT failed bare)
    f"SELECT {blob_sql('identifier', _DIGEST_BYTES)}, "  # noqa: S608
    f"{blob_sql('authority', _DIGEST_BYTES)}, {whole_sql('expires_at')}, "
    f"{blob_sql('member', _DIGEST_BYTES)}, CASE WHEN since_idx IS NULL THEN NULL ELSE "
    f"{whole_sql('since_idx')} END, {blob_sql('since_hash', _DIGEST_BYTES)} FROM vouchers"
)
_REFUTED = (
    f"SELECT {blob_sql('identifier', _DIGEST_BYTES)}, {whole_sql('idx')}, "  # noqa: S608
    f"{blob_sql('change_hash', _DIGEST_BYTES)} FROM refuted_changes"
)
_VOUCH = """
INSERT INTO vouchers (identifier, authority, expires_at, member, since_idx, since_hash)
VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (identifier, authority) DO UPDATE SET
    expires_at = max(excluded.expires_at, vouchers.expires_at),
    member = CASE WHEN excluded.expires_at > vouchers.expires_at
        THEN excluded.member ELSE vouchers.member END,
    kept = CASE WHEN excluded.expires_at > vouchers.expires_at THEN 0 ELSE vouchers.kept END,
    since_idx = CASE WHEN vouchers.since_idx IS NULL OR excluded.since_idx IS NULL THEN NULL
        WHEN excluded.since_idx < vouchers.since_idx THEN excluded.since_idx
        ELSE vouchers.since_idx END,
    since_hash = CASE WHEN vouchers.since_idx IS NULL OR excluded.since_idx IS NULL THEN NULL
        WHEN excluded.since_idx < vouchers.since_idx THEN excluded.since_hash
        ELSE vouchers.since_hash END
WHERE excluded.expires_at > vouchers.expires_at OR (vouchers.since_idx IS NOT NULL
    AND (excluded.since_idx IS NULL OR excluded.since_idx < vouchers.since_idx))
"""
# review 54x, identity 1: the member of an identity's first voucher row, the source its fork
# evidence counts against (troth.storage.sqlite_stores), written once; it goes with the last row
_SOURCE = "INSERT OR IGNORE INTO voucher_sources (identifier, member) VALUES (?, ?)"
_UNSOURCE = (
    "DELETE FROM voucher_sources WHERE identifier = ?1 "
    "AND NOT EXISTS (SELECT 1 FROM vouchers WHERE identifier = ?1)"
)
_KEEP = "UPDATE vouchers SET kept = 1 WHERE identifier = ? AND authority = ? AND expires_at = ?"


class SqliteVoucherStore:
    """Which authorities' chains this node verified for each identity, until when."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def transaction(self) -> AbstractContextManager[None]:
        return self._db.transaction()

    def vouchers(self) -> list[VoucherRow]:
        return self._read(_ROWS, ())

    def vouchers_of(self, identifier: bytes) -> list[VoucherRow]:
        return self._read(_ROWS + " WHERE identifier = ?", (identifier,))

    def _read(self, query: str, params: tuple[object, ...]) -> list[VoucherRow]:
        rows = self._db.fetch_all(query, params)
        digest, whole = self._digest, self._whole
        return [
            (
                digest(r[0], "voucher's identifier"),
                digest(r[1], "voucher's authority"),
                whole(r[2], "voucher's expiry"),
                digest(r[3], "voucher's member"),
                None
                if r[4] is None
                else (whole(r[4], "voucher's change"), digest(r[5], "voucher's change hash")),
            )
            for r in rows
        ]

    def _digest(self, value: object, what: str) -> bytes:
        return stored_blob(value, what, self._db.path, _DIGEST_BYTES)

    def _whole(self, value: object, what: str) -> int:
        return stored_whole(value, what, self._db.path)

    def refuted(self) -> list[tuple[bytes, int, bytes]]:
        return [
            (
                self._digest(r[0], "refuted identifier"),
                self._whole(r[1], "refuted change"),
                self._digest(r[2], "refuted change hash"),
            )
            for r in self._db.fetch_all(_REFUTED)
        ]

    def vouch(
        self,
        identifier: bytes,
        authority: bytes,
        expires_at: int,
        member: bytes,
        since: tuple[int, bytes] | None = None,
    ) -> None:
        index, change_hash = (None, None) if since is None else since
        row = (identifier, authority, expires_at, member, index, change_hash)
        with self._db.transaction():  # runs only for a new or widened row (node.vouchers)
            self._db.execute(_VOUCH, row)
            self._db.execute(_SOURCE, (identifier, member))

    def lapsed(
        self, authority: bytes, until: int, limit: int, member: bytes | None = None
    ) -> list[tuple[bytes, int]]:
        if member is None:
            return self._rows(_LAPSED + _OLDEST, (authority, until, limit))
        return self._rows(_LAPSED + " AND member = ?" + _OLDEST, (authority, until, member, limit))

    def _rows(self, query: str, params: tuple[object, ...]) -> list[tuple[bytes, int]]:
        rows = self._db.fetch_all(query, params)
        return [
            (self._digest(r[0], "voucher's identifier"), self._whole(r[1], "expiry")) for r in rows
        ]

    def settle(
        self,
        authority: bytes,
        forget: Sequence[tuple[bytes, int]],
        keep: Sequence[tuple[bytes, int]],
    ) -> list[bytes]:
        forgotten: list[bytes] = []
        with self._db.transaction():
            for identifier, expires_at in forget:
                params = (identifier, authority, expires_at)
                if self._db.execute(_FORGET, params).rowcount:
                    forgotten.append(identifier)
                    self._db.execute(_UNSOURCE, (identifier,))
            for identifier, expires_at in keep:
                params = (identifier, authority, expires_at)
                self._db.execute(_KEEP, params)
        return forgotten
