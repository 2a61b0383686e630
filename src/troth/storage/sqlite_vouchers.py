"""The `vouchers` table over SQLite (troth.storage.base.VoucherStore; docs/storage.md,
"Vouchers")."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager

from troth.storage.base import VoucherRow
from troth.storage.sqlite import SqliteDatabase

__all__ = ["SqliteVoucherStore"]

_FORGET = "DELETE FROM vouchers WHERE identifier = ? AND authority = ? AND expires_at = ?"
_KEEP = "UPDATE vouchers SET kept = 1 WHERE identifier = ? AND authority = ? AND expires_at = ?"


class SqliteVoucherStore:
    """Which authorities' chains this node verified for each identity, until when."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def transaction(self) -> AbstractContextManager[None]:
        return self._db.transaction()

    def vouchers(self) -> list[VoucherRow]:
        rows = self._db.fetch_all("SELECT identifier, authority, expires_at FROM vouchers")
        return [(bytes(r[0]), bytes(r[1]), int(r[2])) for r in rows]

    def vouch(self, identifier: bytes, authority: bytes, expires_at: int) -> None:
        self._db.execute(
            "INSERT INTO vouchers (identifier, authority, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (identifier, authority) DO UPDATE SET expires_at = excluded.expires_at, "
            "kept = 0 WHERE excluded.expires_at > vouchers.expires_at",
            (identifier, authority, expires_at),
        )

    def lapsed(self, authority: bytes, until: int, limit: int) -> list[tuple[bytes, int]]:
        rows = self._db.fetch_all(
            "SELECT identifier, expires_at FROM vouchers WHERE authority = ? AND kept = 0 "
            "AND expires_at <= ? ORDER BY expires_at LIMIT ?",
            (authority, until, limit),
        )
        return [(bytes(r[0]), int(r[1])) for r in rows]

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
            for identifier, expires_at in keep:
                params = (identifier, authority, expires_at)
                self._db.execute(_KEEP, params)
        return forgotten
