"""The credential holder's repository over SQLite (split from troth.storage.sqlite_authority,
the authority's, review 71q): the chains its identities hold, the feeds it verified, the
authorities it trusts, its pending enrollments and the feed syncs due."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Final

from troth import limits
from troth.storage.base import FeedRow, FeedState, HeldCredential, PendingEnrollmentRecord
from troth.storage.row_types import (
    blob_sql,
    stored_blob,
    stored_text,
    stored_whole,
    text_sql,
    whole_sql,
)
from troth.storage.sqlite import SqliteDatabase
from troth.storage.sqlite_authority import _DIGEST_BYTES, _FEED_ROW, _digest, _rows
from troth.storage.sqlite_schema import PENDING_BY_TICKET

__all__ = ["SqliteCredentialStore"]

_ADDRESS_BYTES: Final = limits.MAX_TICKET_BYTES  # an authority's address, as a ticket carries it
_TRUSTED: Final = (  # typed and bounded (review 71q, wave3a 4: `bytes()` of a TEXT identifier
    # failed bare, of an INTEGER n made n bytes; a BLOB address was handed on)
    f"SELECT {blob_sql('identifier', _DIGEST_BYTES)}, "  # noqa: S608
    f"{text_sql('address', _ADDRESS_BYTES)} FROM trusted_authorities"
)
_DUE_ADDRESS: Final = (  # a mark on this machine ("" or node:NAME) before one over the network
    "coalesce(min(CASE WHEN address = '' OR substr(address, 1, 5) = 'node:' THEN address END), "
    "min(address))"
)
_SYNCS_DUE: Final = (
    f"SELECT {blob_sql('authority', _DIGEST_BYTES)}, "  # noqa: S608
    f"{text_sql(_DUE_ADDRESS, _ADDRESS_BYTES)} FROM feed_syncs_due GROUP BY authority"
)

_PENDING_BY_TICKET = PENDING_BY_TICKET  # review 61l: made here, in sqlite_schema for planted


def _keyed_by_ticket(db: SqliteDatabase) -> bool:
    columns = db.fetch_all("PRAGMA table_info(pending_enrollments)")
    return any(row[1] == "ticket" and row[5] > 0 for row in columns)  # (cid, name, ..., pk)


_HELD: Final = (
    f"SELECT {blob_sql('id', _DIGEST_BYTES)}, "  # noqa: S608
    f"{blob_sql('chain', limits.MAX_CHAIN_BYTES)}, {blob_sql('authority', _DIGEST_BYTES)}, "
    f"{whole_sql('expires_at')} FROM held_credentials WHERE identifier = ? "
    "ORDER BY expires_at DESC"
)
_FEED_STATE: Final = (
    f"SELECT {whole_sql('count')}, {blob_sql('head', _DIGEST_BYTES)}, "  # noqa: S608
    f"{whole_sql('latest')}, {whole_sql('issued_at')} FROM feed_state WHERE authority = ?"
)
_PENDING_ROW: Final = (
    f"{blob_sql('authority', _DIGEST_BYTES)}, {text_sql('ticket', limits.MAX_TICKET_TEXT)}, "
    # an address a ticket carries (within MAX_TICKET_BYTES)
    f"{text_sql('address', limits.MAX_TICKET_BYTES)}, {whole_sql('started_at')}"
)


def _pending(identifier: bytes, row: tuple[object, ...], path: Path) -> PendingEnrollmentRecord:
    """A `pending_enrollments` row read by `_PENDING_ROW`, of `identifier`."""
    authority, ticket, address, started_at = row
    return PendingEnrollmentRecord(
        identifier,
        _digest(authority, "pending enrollment's authority", path),
        stored_text(ticket, "pending enrollment's ticket", path, limits.MAX_TICKET_TEXT),
        stored_text(address, "pending enrollment's address", path, limits.MAX_TICKET_BYTES),
        stored_whole(started_at, "pending enrollment's start", path),
    )


class SqliteCredentialStore:
    """A holder's side in a SQLite database (docs/storage.md): the credential chains its
    identities hold, the revocation feeds it verified, the authorities it trusts and its
    pending enrollments."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db
        if not _keyed_by_ticket(db):  # a write only on a node.db made before review 61l
            with db.transaction():
                if not _keyed_by_ticket(db):  # another process may have rebuilt it meanwhile
                    for statement in _PENDING_BY_TICKET:
                        db.execute(statement)

    def transaction(self) -> AbstractContextManager[None]:
        return self._db.transaction()

    def put_held(self, held: HeldCredential, now: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO held_credentials VALUES (?, ?, ?, ?, ?, ?)",
            (held.identifier, held.id, held.chain, held.authority, held.expires_at, now),
        )

    def list_held(self, identifier: bytes) -> list[HeldCredential]:
        path = self._db.path
        return [
            HeldCredential(
                identifier,
                _digest(r[0], "held credential's id", path),
                stored_blob(r[1], "held chain", path, limits.MAX_CHAIN_BYTES),
                _digest(r[2], "held chain's authority", path),
                stored_whole(r[3], "held chain's expiry", path),
            )
            for r in self._db.fetch_all(_HELD, (identifier,))
        ]

    def forget_held(self, identifier: bytes, ids: Sequence[bytes]) -> int:
        gone = 0
        for credential_id in ids:
            gone += self._db.execute(
                "DELETE FROM held_credentials WHERE identifier = ? AND id = ?",
                (identifier, credential_id),
            ).rowcount
        return gone

    def feed_state(self, authority: bytes) -> FeedState | None:
        row = self._db.fetch_one(_FEED_STATE, (authority,))
        if row is None:
            return None
        path = self._db.path
        count, latest, issued_at = (stored_whole(row[i], "feed's number", path) for i in (0, 2, 3))
        return FeedState(authority, count, _digest(row[1], "feed's head", path), latest, issued_at)

    def extend_feed(self, state: FeedState, rows: list[FeedRow]) -> None:
        with self._db.transaction():
            if rows:
                self._db.execute_many(
                    "INSERT INTO feed_entries VALUES (?, ?, ?, ?, ?, ?)",
                    [(state.authority, *row) for row in rows],
                )
            self._db.execute(
                "INSERT OR REPLACE INTO feed_state VALUES (?, ?, ?, ?, ?)",
                (state.authority, state.count, state.head, state.latest, state.issued_at),
            )

    def feed_rows(self, authority: bytes, start: int) -> Iterator[FeedRow]:
        return _rows(
            self._db,
            f"SELECT {_FEED_ROW} FROM feed_entries "  # noqa: S608
            "WHERE authority = ? AND seq >= ? ORDER BY seq",
            (authority, start),
        )

    def announced(self, identifier: bytes, authority: bytes) -> int:
        row = self._db.fetch_one(
            f"SELECT {whole_sql('changes')} FROM announcements "  # noqa: S608
            "WHERE identifier = ? AND authority = ?",
            (identifier, authority),
        )
        return 1 if row is None else stored_whole(row[0], "announced changes", self._db.path)

    def set_announced(self, identifier: bytes, authority: bytes, changes: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO announcements VALUES (?, ?, ?)",
            (identifier, authority, changes),
        )

    def trust_authority(self, identifier: bytes, address: str, now: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO trusted_authorities VALUES (?, ?, ?)",
            (identifier, address, now),
        )

    def trusted_authorities(self) -> list[tuple[bytes, str]]:
        return self._authorities(_TRUSTED, "trusted authority")

    def put_pending(self, record: PendingEnrollmentRecord) -> None:
        # an upsert, not INSERT OR REPLACE: the row keeps its rowid, the order it was first
        # recorded in (`list_pending`)
        self._db.execute(
            "INSERT INTO pending_enrollments VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (identifier, authority, ticket) "
            "DO UPDATE SET address = excluded.address, started_at = excluded.started_at",
            (
                record.identifier,
                record.authority,
                record.ticket,
                record.address,
                record.started_at,
            ),
        )

    def list_pending(self, identifier: bytes) -> list[PendingEnrollmentRecord]:
        rows = self._db.fetch_all(
            f"SELECT {_PENDING_ROW} FROM pending_enrollments "  # noqa: S608
            "WHERE identifier = ? ORDER BY rowid",
            (identifier,),
        )
        return [_pending(identifier, r, self._db.path) for r in rows]

    def every_pending(
        self, limit: int, after: tuple[int, bytes, bytes, str] | None = None
    ) -> list[PendingEnrollmentRecord]:
        order = "ORDER BY started_at, identifier, authority, ticket LIMIT ?"
        columns = (
            f"SELECT {blob_sql('identifier', _DIGEST_BYTES)}, {_PENDING_ROW} "  # noqa: S608
            "FROM pending_enrollments "
        )
        if after is None:
            rows = self._db.fetch_all(columns + order, (limit,))
        else:
            rows = self._db.fetch_all(
                columns
                + "WHERE (started_at, identifier, authority, ticket) > (?, ?, ?, ?) "
                + order,
                (*after, limit),
            )
        path = self._db.path
        return [
            _pending(_digest(r[0], "pending enrollment's identity", path), r[1:], path)
            for r in rows
        ]

    def clear_pending(self, identifier: bytes, authority: bytes, ticket: str) -> bool:
        deleted = self._db.execute(
            "DELETE FROM pending_enrollments WHERE identifier = ? AND authority = ? AND ticket = ?",
            (identifier, authority, ticket),
        )
        return deleted.rowcount == 1

    def mark_sync_due(self, authority: bytes, address: str, now: int) -> int:
        cursor = self._db.execute(
            "INSERT INTO feed_syncs_due (authority, address, marked_at) VALUES (?, ?, ?)",
            (authority, address, now),
        )
        return int(cursor.lastrowid or 0)

    def syncs_due(self) -> list[tuple[bytes, str]]:
        # a mark on this machine ("" or node:NAME, troth.authority.tickets.LOCAL_PREFIX) before
        # one over the network: `min(address)` put "/tcp/..." before "node:beta", and the
        # local mark was passed over (review 61s, policies 1)
        return self._authorities(_SYNCS_DUE, "feed sync due")

    def _authorities(self, sql: str, what: str) -> list[tuple[bytes, str]]:
        """(authority, address) rows read by `sql` typed and bounded (review 71q, wave3a 4)."""
        path = self._db.path
        return [
            (
                _digest(r[0], what, path),
                stored_text(r[1], f"{what}'s address", path, _ADDRESS_BYTES),
            )
            for r in self._db.fetch_all(sql)
        ]

    def sync_due(self, authority: bytes) -> bool:
        found = self._db.fetch_one(
            "SELECT 1 FROM feed_syncs_due WHERE authority = ? LIMIT 1", (authority,)
        )
        return found is not None

    def marks_due(self, authority: bytes) -> list[int]:
        rows = self._db.fetch_all(
            "SELECT id FROM feed_syncs_due WHERE authority = ? ORDER BY id", (authority,)
        )
        return [int(r[0]) for r in rows]

    def clear_sync_due(self, authority: bytes, mark: int | None = None) -> int:
        if mark is None:
            deleted = self._db.execute(
                "DELETE FROM feed_syncs_due WHERE authority = ?", (authority,)
            )
        else:
            deleted = self._db.execute(
                "DELETE FROM feed_syncs_due WHERE authority = ? AND id = ?", (authority, mark)
            )
        return deleted.rowcount
