"""The authority's and the credential holder's repositories over SQLite."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from troth.storage.base import AuthorityConfig, HeldCredential, MemberRecord
from troth.storage.sqlite import SqliteDatabase

__all__ = ["SqliteAuthorityStore", "SqliteCredentialStore"]


class SqliteAuthorityStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def transaction(self) -> AbstractContextManager[None]:
        return self._db.transaction()

    def get_config(self) -> AuthorityConfig | None:
        row = self._db.fetch_one(
            "SELECT identifier, name, credential_ttl, delegation_depth, created_at FROM authority"
        )
        return (
            None if row is None else AuthorityConfig(bytes(row[0]), row[1], row[2], row[3], row[4])
        )

    def put_config(self, config: AuthorityConfig) -> None:
        self._db.execute(
            "INSERT INTO authority VALUES (?, ?, ?, ?, ?)",
            (
                config.identifier,
                config.name,
                config.credential_ttl,
                config.delegation_depth,
                config.created_at,
            ),
        )

    def put_ticket(
        self,
        code_hash: bytes,
        attributes: bytes,
        uses: int,
        expires_at: int,
        created_by: bytes,
        now: int,
    ) -> None:
        self._db.execute(
            "INSERT INTO tickets VALUES (?, ?, ?, ?, ?, ?)",
            (code_hash, attributes, uses, expires_at, created_by, now),
        )

    def redeem_ticket(self, code_hash: bytes, now: int) -> tuple[bytes, bytes] | None:
        # one conditional write (lessons.md: read-then-delete lets two redeemers win)
        row = self._db.fetch_one(
            "UPDATE tickets SET uses_left = uses_left - 1 "
            "WHERE code_hash = ? AND uses_left > 0 AND expires_at > ? "
            "RETURNING attributes, created_by",
            (code_hash, now),
        )
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    def put_member(self, record: MemberRecord) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO members VALUES (?, ?, ?, ?)",
            (record.identifier, record.attributes, record.added_by, record.added_at),
        )

    def get_member(self, identifier: bytes) -> MemberRecord | None:
        row = self._db.fetch_one("SELECT * FROM members WHERE identifier = ?", (identifier,))
        return None if row is None else _member(row)

    def list_members(self) -> list[MemberRecord]:
        return [_member(r) for r in self._db.fetch_all("SELECT * FROM members ORDER BY added_at")]

    def remove_member(self, identifier: bytes) -> bool:
        return (
            self._db.execute("DELETE FROM members WHERE identifier = ?", (identifier,)).rowcount
            == 1
        )

    def record_issued(
        self, credential_id: bytes, subject: bytes, expires_at: int, now: int
    ) -> None:
        self._db.execute(
            "INSERT INTO issued_credentials VALUES (?, ?, ?, ?)",
            (credential_id, subject, expires_at, now),
        )

    def unexpired_issued(self, subject: bytes, now: int) -> list[bytes]:
        rows = self._db.fetch_all(
            "SELECT id FROM issued_credentials WHERE subject = ? AND expires_at > ? "
            "ORDER BY issued_at",
            (subject, now),
        )
        return [bytes(r[0]) for r in rows]

    def append_revocation(self, make_entry: Callable[[int, bytes], tuple[bytes, bytes]]) -> int:
        with self._db.transaction():  # BEGIN IMMEDIATE: concurrent appenders queue up
            row = self._db.fetch_one("SELECT seq, head FROM revocations ORDER BY seq DESC LIMIT 1")
            seq = 0 if row is None else row[0] + 1
            entry, head = make_entry(seq, b"" if row is None else bytes(row[1]))
            self._db.execute("INSERT INTO revocations VALUES (?, ?, ?)", (seq, entry, head))
        return seq

    def revocation_entries(self) -> list[bytes]:
        return [
            bytes(r[0]) for r in self._db.fetch_all("SELECT entry FROM revocations ORDER BY seq")
        ]

    def revocation_head(self) -> bytes | None:
        row = self._db.fetch_one("SELECT head FROM revocations ORDER BY seq DESC LIMIT 1")
        return None if row is None else bytes(row[0])


def _member(row: tuple[bytes, bytes, bytes, int]) -> MemberRecord:
    return MemberRecord(bytes(row[0]), bytes(row[1]), bytes(row[2]), row[3])


class SqliteCredentialStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def transaction(self) -> AbstractContextManager[None]:
        return self._db.transaction()

    def put_held(self, held: HeldCredential, now: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO held_credentials VALUES (?, ?, ?, ?, ?, ?)",
            (held.identifier, held.id, held.chain, held.authority, held.expires_at, now),
        )

    def list_held(self, identifier: bytes) -> list[HeldCredential]:
        rows = self._db.fetch_all(
            "SELECT identifier, id, chain, authority, expires_at FROM held_credentials "
            "WHERE identifier = ? ORDER BY expires_at DESC",
            (identifier,),
        )
        return [
            HeldCredential(bytes(r[0]), bytes(r[1]), bytes(r[2]), bytes(r[3]), r[4]) for r in rows
        ]

    def get_feed(self, authority: bytes) -> bytes | None:
        row = self._db.fetch_one("SELECT feed FROM feeds WHERE authority = ?", (authority,))
        return None if row is None else bytes(row[0])

    def put_feed(self, authority: bytes, feed: bytes, count: int, issued_at: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO feeds VALUES (?, ?, ?, ?)", (authority, feed, count, issued_at)
        )

    def trust_authority(self, identifier: bytes, address: str, now: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO trusted_authorities VALUES (?, ?, ?)",
            (identifier, address, now),
        )

    def trusted_authorities(self) -> list[tuple[bytes, str]]:
        rows = self._db.fetch_all("SELECT identifier, address FROM trusted_authorities")
        return [(bytes(r[0]), r[1]) for r in rows]
