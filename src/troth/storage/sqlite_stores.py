"""The repository interfaces of troth.storage.base (and the vault's SealedKeyStore) over SQLite."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from troth import limits
from troth.errors import ConflictError, StorageError
from troth.storage.base import (
    RETIRED_PROOF_MARK,
    ChangeRow,
    ForkRecord,
    LocalIdentityRecord,
    LocalIdentityRow,
    PurposeKeyRecord,
)
from troth.storage.row_types import (
    blob_sql,
    or_null,
    stored_blob,
    stored_text,
    stored_whole,
    text_sql,
    whole_sql,
)
from troth.storage.sqlite import SqliteDatabase

__all__ = ["SqliteIdentityStore", "SqliteKeyStore"]


# review 54m, identity 1: whose share of `identity_forks` a fork of an identity counts against,
# its source: the member at the root of the first chain this node verified for it (its first
# `vouchers` row's, kept in `voucher_sources`: review 54x, identity 1, a later chain, which
# whoever holds its keys can show, never moves it), else the identity itself (an imported
# copy, a pinned peer's, an issuer's); a local identity's forks count for none
_FORKS_OF_SOURCE = (  # the forks kept of the source of identifier ?1
    "WITH kept AS (SELECT coalesce((SELECT member FROM voucher_sources v "
    "WHERE v.identifier = f.identifier), f.identifier) AS source FROM identity_forks f "
    "WHERE NOT EXISTS (SELECT 1 FROM identities i WHERE i.identifier = f.identifier "
    "AND i.primary_key IS NOT NULL)) SELECT count(*) FROM kept WHERE source = "
    "coalesce((SELECT member FROM voucher_sources WHERE identifier = ?1), ?1)"
)
_FORK_SOURCE_MOST = (  # the source holding the most (ties: the newest record's): its newest
    "WITH kept AS (SELECT seq, coalesce((SELECT member FROM voucher_sources v "
    "WHERE v.identifier = f.identifier), f.identifier) AS source FROM identity_forks f "
    "WHERE NOT EXISTS (SELECT 1 FROM identities i WHERE i.identifier = f.identifier "
    "AND i.primary_key IS NOT NULL)) SELECT count(*), max(seq) FROM kept GROUP BY source "
    "ORDER BY count(*) DESC, max(seq) DESC LIMIT 1"
)


class SqliteKeyStore:
    """Sealed private keys of the software vault (`vault_keys`, `vault_meta`)."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def put_sealed_key(
        self, key_number: int, key_type: int, purpose: int, sealed: bytes, created_at: int
    ) -> None:
        self._db.run(  # a rotation's new key: the kept cursor, the BLOB bound unadapted
            "INSERT INTO vault_keys VALUES (?, ?, ?, ?, ?)",
            (key_number, key_type, purpose, bytearray(sealed), created_at),
        )

    def put_sealed_keys(self, rows: Sequence[tuple[int, int, int, bytes, int]]) -> None:
        _insert_rows(
            self._db,
            "INSERT INTO vault_keys VALUES ",
            "(?, ?, ?, ?, ?)",
            [(n, t, p, bytearray(sealed), at) for n, t, p, sealed, at in rows],  # _insert_rows
        )

    def max_key_number(self) -> int:
        return int(self._db.fetch_one("SELECT coalesce(max(key_id), 0) FROM vault_keys")[0])

    def get_sealed_key(self, key_number: int) -> tuple[int, int, bytes] | None:
        rows = self._db.run_rows(
            "SELECT key_type, purpose, sealed FROM vault_keys WHERE key_id = ?", (key_number,)
        )
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    def data_version(self) -> int:
        return self._db.data_version()

    def stored_key_nonces(self, key_numbers: Sequence[int]) -> dict[int, bytes]:
        """The sealed value's nonce (its bytes 1-12) of each of `key_numbers` that has a row,
        in one statement (a primary-key look-up each): how another connection's software
        vault tells, with no write on either side, whether a key it caches was deleted, or its
        number given to another key (reviews 50a, 50h; docs/vault.md, "Keys deleted by another
        process"). At most _BATCH numbers."""
        if not key_numbers:
            return {}
        if len(key_numbers) > _BATCH:
            raise StorageError(f"at most {_BATCH} key numbers a look-up")
        marks = ", ".join(["?"] * len(key_numbers))
        query = "SELECT key_id, substr(sealed, 2, 12) FROM vault_keys WHERE key_id IN "
        query += f"({marks})"
        return dict(self._db.fetch_all(query, tuple(key_numbers)))

    def delete_sealed_key(self, key_number: int, key_type: int | None = None) -> bool:
        if key_type is None:
            return (
                self._db.run("DELETE FROM vault_keys WHERE key_id = ?", (key_number,)).rowcount == 1
            )
        query = "DELETE FROM vault_keys WHERE key_id = ? AND key_type = ?"  # review 66g, vault 1
        return self._db.run(query, (key_number, key_type)).rowcount == 1

    def get_vault_meta(self, name: str) -> bytes | None:
        row = self._db.fetch_one(_VAULT_META, (name,))
        path = self._db.path
        return None if row is None else stored_blob(row[0], name, path, _VAULT_META_BYTES)

    def put_vault_meta(self, name: str, value: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO vault_meta VALUES (?, ?)", (name, value))

    def sealed_keys_after(self, key_number: int, limit: int) -> list[tuple[int, int, int, bytes]]:
        """The rows a rekey re-seals, typed and bounded (review 72k, holds2 3: a sealed value
        of any size was fetched whole, a thousand rows at a time, TEXT not UTF-8 failed the
        statement naming no row): StorageError naming the key of a damaged one."""
        found = self._db.fetch_all(_SEALED_AFTER, (key_number, limit))
        path = self._db.path
        rows = []
        for number, key_type, purpose, sealed in found:
            key = f"sealed key {number:016x}'s"  # key_id: an INTEGER PRIMARY KEY, a rowid
            rows.append(
                (
                    number,
                    stored_whole(key_type, f"{key} type", path),
                    stored_whole(purpose, f"{key} purpose", path),
                    stored_blob(sealed, f"{key} sealed value", path, _SEALED_KEY_BYTES),
                )
            )
        return rows

    def replace_sealed_keys(self, rows: Sequence[tuple[int, bytes]]) -> None:
        with self._db.transaction():
            for number, sealed in rows:
                self._db.execute(
                    "UPDATE vault_keys SET sealed = ? WHERE key_id = ?", (sealed, number)
                )


_VAULT_META_BYTES = 1024  # a key check value, a rekey's tag or mark: tens of bytes
_VAULT_META = f"SELECT {blob_sql('value', _VAULT_META_BYTES)} FROM vault_meta WHERE name = ?"  # noqa: S608
"""A vault's row, typed and bounded (review 71c, rows 4: `bytes()` of a TEXT one failed each
opening of the node bare, of an INTEGER n made n bytes)."""
_SEALED_KEY_BYTES = 1024  # a sealed key: version, nonce, a 32-byte key and its tag (61 bytes)
_SEALED_AFTER = (
    f"SELECT key_id, {whole_sql('key_type')}, {whole_sql('purpose')}, "  # noqa: S608
    f"{blob_sql('sealed', _SEALED_KEY_BYTES)} FROM vault_keys WHERE key_id > ? "
    "ORDER BY key_id LIMIT ?"
)
_BATCH = 500  # identifiers per IN (...) query, well below SQLite's limit on parameters
_INSERT_ROWS = 128  # rows per multi-row INSERT: under 999 parameters (SQLite before 3.32)


def _insert_rows(
    db: SqliteDatabase, head: str, row_marks: str, rows: Sequence[tuple[object, ...]]
) -> None:
    """Insert `rows` with one statement per _INSERT_ROWS (a full chunk's statement is
    prepared once and cached): a fraction of a statement per row. ConflictError when a row
    collides (its statement writes nothing; the caller's transaction decides the rest).

    Hot callers pass byte strings as bytearrays and write NULL in `row_marks` rather than bind
    None: the sqlite3 module looks up an adapter for every parameter not of exact type int,
    float, str or bytearray (~1 us each: a tuple, a dict miss, two attribute lookups), and
    binds a bytearray as the same BLOB as bytes."""
    full = head + ", ".join([row_marks] * _INSERT_ROWS)
    for start in range(0, len(rows), _INSERT_ROWS):
        chunk = rows[start : start + _INSERT_ROWS]
        sql = full if len(chunk) == _INSERT_ROWS else head + ", ".join([row_marks] * len(chunk))
        db.execute(sql, tuple(itertools.chain.from_iterable(chunk)))


_HANDLE_BYTES = 4096  # a vault's key handle (its name, a key type, a key id): 1,024 characters
_NAME_BYTES = 4 * limits.MAX_NAME_LENGTH  # a name's characters, 4 bytes each at most
_IDENTIFIER_BYTES = 64  # an identifier's bytes (a 32-byte digest), one a little longer refused
_HISTORY = blob_sql("history", limits.MAX_IDENTITY_HISTORY_BYTES)
_LOCAL_SELECT = (  # typed and bounded (review 71c, rows 1: `bytes()` of a TEXT history failed
    # bare, of an INTEGER n made n bytes, each time the node listed its identities)
    f"SELECT {blob_sql('identifier', _IDENTIFIER_BYTES)}, "  # noqa: S608
    f"{or_null('name', text_sql('name', _NAME_BYTES))}, {text_sql('primary_key', _HANDLE_BYTES)}, "
    f"{whole_sql('created_at')}, {_HISTORY}, {whole_sql('changes')}, "
    f"{or_null('next_key', text_sql('next_key', _HANDLE_BYTES))}, "
    f"{whole_sql('change_rows')} FROM identities WHERE primary_key IS NOT NULL"
)
_LOCAL_BY_NAME = _LOCAL_SELECT + " AND name = ?"


def _change_part(column: str) -> str:
    """A change row's bytes, bounded by a history's (which holds each of them)."""
    return blob_sql(column, limits.MAX_IDENTITY_HISTORY_BYTES)


_CHANGE_HASH_READ = blob_sql("change_hash", _IDENTIFIER_BYTES)
_CHANGE_HASH = (  # a local identity's change rows typed and bounded (review 71x, wave4b 1:
    # `bytes()` of a TEXT hash failed bare, of an INTEGER n made n zero bytes)
    f"SELECT {_CHANGE_HASH_READ} FROM identity_changes WHERE identifier = ? AND idx = ?"  # noqa: S608
)
_CHANGE_INDEX = (
    f"SELECT {whole_sql('idx')} FROM identity_changes "  # noqa: S608
    "WHERE identifier = ? AND change_hash = ?"
)
_CHANGE_ROWS = (
    f"SELECT {whole_sql('idx')}, {_change_part('body')}, {_change_part('signature')}, "  # noqa: S608
    f"{or_null('previous_signature', _change_part('previous_signature'))}, "
    f"{_CHANGE_HASH_READ} FROM identity_changes "
    "WHERE identifier = ? AND idx BETWEEN ? AND ? ORDER BY idx"
)
_ANY_PURPOSE_KEY = "SELECT 1 FROM purpose_keys WHERE identifier = ? LIMIT 1"
_PURPOSE_ROW = (  # typed and bounded: a handle's bytes (TEXT that is not UTF-8 failed the read,
    # a rotation's too: review 71k, wave2d 1)
    f"{text_sql('key_handle', _HANDLE_BYTES)}, "
    f"{blob_sql('attestation', limits.MAX_ATTESTATION_BYTES)}"
)
_PURPOSE_KEY = (
    f"SELECT {_PURPOSE_ROW} FROM purpose_keys "  # noqa: S608
    "WHERE identifier = ? AND purpose = ?"
)
_TAKEN = (  # a rotation's
    "DELETE FROM purpose_keys WHERE identifier = ? "  # noqa: S608
    f"RETURNING {whole_sql('purpose')}, {_PURPOSE_ROW}"
)
_LOCAL_BY_IDENTIFIER = _LOCAL_SELECT + " AND identifier = ?"
_UPDATE_HISTORY_SET = (
    "UPDATE identities SET history = ?, changes = ?, updated_at = ?, "
    "primary_key = coalesce(?, primary_key), next_key = coalesce(?, next_key), "
    "change_rows = coalesce(?, change_rows)"
)
_UPDATE_HISTORY = _UPDATE_HISTORY_SET + " WHERE identifier = ? AND changes = ?"
_UPDATE_HISTORY_LINKED = (
    _UPDATE_HISTORY_SET + ", linked = coalesce(?, linked) WHERE identifier = ? AND changes = ?"
)


class SqliteIdentityStore:
    """Known histories, local identities and purpose keys (`identities`, `purpose_keys`)."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def transaction(self) -> AbstractContextManager[None]:
        return self._db.transaction()

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._db.after_commit(callback)

    def abandoned(self) -> bool:
        db = self._db
        return db.in_transaction and not db.connection().in_transaction

    def get_history(self, identifier: bytes) -> tuple[bytes, int] | None:
        query = f"SELECT {_HISTORY}, {whole_sql('changes')} FROM identities WHERE identifier = ?"  # noqa: S608
        row = self._db.fetch_one(query, (identifier,))
        if row is None:
            return None
        path = self._db.path
        return _history(row[0], path), stored_whole(row[1], "identity's change count", path)

    def change_count(self, identifier: bytes) -> int | None:
        query = f"SELECT {whole_sql('changes')} FROM identities WHERE identifier = ?"  # noqa: S608
        row = self._db.fetch_one(query, (identifier,))
        return (
            None if row is None else stored_whole(row[0], "identity's change count", self._db.path)
        )

    def change_counts(self, identifiers: Sequence[bytes]) -> dict[bytes, int]:
        # typed (review 72b, rows 5: int() of a TEXT count failed bare, a BLOB b'7' was 7)
        rows = self._identities_in(f"identifier, {whole_sql('changes')}", identifiers)
        path = self._db.path
        return {
            bytes(identifier): stored_whole(changes, "identity's change count", path)
            for identifier, changes in rows
        }

    def _identities_in(
        self, columns: str, identifiers: Sequence[bytes], where: str = "", *params: object
    ) -> list[Any]:
        """`SELECT columns FROM identities WHERE identifier IN (...) where`, `_BATCH`
        identifiers per query (`columns` and `where` are this module's own SQL)."""
        rows: list[Any] = []
        for start in range(0, len(identifiers), _BATCH):
            batch = identifiers[start : start + _BATCH]
            marks = ", ".join("?" * len(batch))  # placeholders only: the values are bound
            query = f"SELECT {columns} FROM identities WHERE identifier IN ({marks}) {where}"  # noqa: S608
            rows.extend(self._db.fetch_all(query, (*batch, *params)))
        return rows

    def insert_history(
        self, identifier: bytes, history: bytes, changes: int, now: int, *, linked: bool = True
    ) -> None:
        self._db.execute(
            "INSERT INTO identities (identifier, history, changes, updated_at, linked) "
            "VALUES (?, ?, ?, ?, ?)",
            (identifier, history, changes, now, int(linked)),
        )

    def history_linked(self, identifier: bytes) -> bool:
        query = "SELECT linked FROM identities WHERE identifier = ?"
        row = self._db.fetch_one(query, (identifier,))
        return row is None or bool(row[0])

    def history_checked(self, identifier: bytes) -> bool:
        query = "SELECT linked FROM identities WHERE identifier = ?"
        row = self._db.fetch_one(query, (identifier,))
        return row is None or row[0] == 1

    def add_locals(self, rows: Sequence[LocalIdentityRow]) -> None:
        head = (
            "INSERT INTO identities (identifier, history, changes, updated_at, primary_key, name, "
            "created_at, next_key) VALUES "
        )
        # byte strings as bytearrays, and no NULL bound for a batch without names: _insert_rows
        if any(row[2] is not None for row in rows):
            marks = "(?, ?, 1, ?, ?, ?, ?, ?)"
            values: list[tuple[object, ...]] = [
                (bytearray(d), bytearray(h), now, p, name, now, n) for d, h, name, p, n, now in rows
            ]
        else:
            marks = "(?, ?, 1, ?, ?, NULL, ?, ?)"
            values = [(bytearray(d), bytearray(h), now, p, now, n) for d, h, _, p, n, now in rows]
        _insert_rows(self._db, head, marks, values)

    def update_history(
        self,
        identifier: bytes,
        history: bytes,
        changes: int,
        expected_changes: int,
        now: int,
        primary_key: str | None = None,
        next_key: str | None = None,
        change_rows: int | None = None,
        linked: bool | None = None,
    ) -> None:
        # the kept cursor, byte strings bound as bytearrays and no NULL for `linked` when not
        # given (each bytes or None parameter costs sqlite3 an adapter look-up: review 54a)
        head = (bytearray(history), changes, now, primary_key, next_key, change_rows)
        updated = self._db.run(
            _UPDATE_HISTORY if linked is None else _UPDATE_HISTORY_LINKED,
            (*head, bytearray(identifier), expected_changes)
            if linked is None
            else (*head, int(linked), bytearray(identifier), expected_changes),
        ).rowcount
        if updated != 1:
            raise ConflictError("the stored history changed meanwhile")

    def find_local(
        self, *, name: str | None = None, identifier: bytes | None = None
    ) -> LocalIdentityRecord | None:
        if name is not None:
            rows = self._db.run_rows(_LOCAL_BY_NAME, (name,))
        else:
            rows = self._db.run_rows(_LOCAL_BY_IDENTIFIER, (identifier,))
        return _local(rows[0], self._db.path) if rows else None

    def list_local(self) -> Iterator[LocalIdentityRecord]:
        for row in self._db.fetch_all(_LOCAL_SELECT + " ORDER BY created_at, name"):
            yield _local(row, self._db.path)

    def put_purpose_key(self, record: PurposeKeyRecord) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO purpose_keys VALUES (?, ?, ?, ?)",
            (record.identifier, record.purpose, record.key_handle, record.attestation),
        )

    def get_purpose_key(self, identifier: bytes, purpose: int) -> PurposeKeyRecord | None:
        row = self._db.fetch_one(_PURPOSE_KEY, (identifier, purpose))
        if row is None:
            return None
        return self._purpose_record(identifier, purpose, *row)

    def _purpose_record(
        self, identifier: bytes, purpose: object, handle: object, attestation: object
    ) -> PurposeKeyRecord:
        """A `purpose_keys` row read by `_PURPOSE_ROW` (its purpose by `whole_sql`, or given);
        StorageError when node.db holds another type, or a handle that is not UTF-8."""
        path = self._db.path
        return PurposeKeyRecord(
            identifier,
            stored_whole(purpose, "purpose key's purpose", path),
            stored_text(handle, "purpose key handle", path, _HANDLE_BYTES),
            stored_blob(attestation, "attestation", path, limits.MAX_ATTESTATION_BYTES),
        )

    def take_purpose_keys(self, identifier: bytes) -> list[PurposeKeyRecord]:
        # most rotations find none: a look-up first (~1 us) spares the DELETE ... RETURNING
        # (~3.5 us: RETURNING fills a table of its own even for no row; review 59c, rotate 2).
        # Either finds what the other would: whatever is inserted after the look-up would
        # have been inserted after the DELETE too
        key = bytearray(identifier)
        if not self._db.run_rows(_ANY_PURPOSE_KEY, (key,)):
            return []
        taken = []
        for row in self._db.run_rows(_TAKEN, (key,)):
            # a damaged row is no record: it names no key the identity attested (not retired,
            # as one whose attestation does not verify), never a bare failure of the rotation,
            # a compromised one too (review 71c, rows 11; review 71k, wave2d 1); deleted
            with contextlib.suppress(StorageError):
                taken.append(self._purpose_record(identifier, *row))
        return taken

    def add_retired_keys(self, handles: Sequence[str]) -> None:
        self._db.execute_many(
            "INSERT OR IGNORE INTO retired_keys VALUES (?)", [(h,) for h in handles]
        )

    def retired_keys(self, limit: int) -> list[str]:
        return [r.partition(RETIRED_PROOF_MARK)[0] for r in self.retired_key_records(limit)]

    def retired_key_records(self, limit: int, *, after: str = "") -> list[str]:
        rows = self._db.fetch_all(
            # TEXT only: a BLOB (no record troth writes) sorts after every text, and the page
            # after it, asked by its text, began with it again (review 70a, chkeys 2). Read as
            # bytes: a text that is not UTF-8 (a writer's CAST) failed every read (StorageError,
            # review 70k, wave1a 1); its bytes come back as surrogate escapes (`_record_text`)
            # and name it again, for the next page and its drop
            "SELECT CAST(handle AS BLOB) FROM retired_keys WHERE handle > CAST(? AS TEXT) "
            "AND typeof(handle) = 'text' ORDER BY handle LIMIT ?",
            (_record_bytes(after), limit),
        )
        return [_record_text(r[0]) for r in rows]

    def retired_key_records_naming(self, text: str, *, after: str) -> list[str]:
        rows = self._db.run_rows(
            # read as bytes, as `retired_key_records` (review 70k, wave1a 1: a record naming
            # `text` that is not UTF-8 failed every rotation of its identity)
            "SELECT CAST(handle AS BLOB) FROM retired_keys WHERE handle > CAST(? AS TEXT) "
            "AND typeof(handle) = 'text' AND instr(handle, CAST(? AS TEXT)) > 0 ORDER BY handle",
            (_record_bytes(after), _record_bytes(text)),
        )
        return [_record_text(r[0]) for r in rows]

    def drop_retired_keys(self, handles: Sequence[str]) -> None:
        self._db.execute_many(
            "DELETE FROM retired_keys WHERE handle = CAST(? AS TEXT)",
            [(_record_bytes(h),) for h in handles],
        )

    def append_changes(self, identifier: bytes, rows: Sequence[ChangeRow]) -> None:
        self._db.execute_many(
            "INSERT INTO identity_changes VALUES (?, ?, ?, ?, ?, ?)",
            [(identifier, *row) for row in rows],
        )

    def change_hash(self, identifier: bytes, index: int) -> bytes | None:
        row = self._db.fetch_one(_CHANGE_HASH, (identifier, index))
        return None if row is None else _change_hash(row[0], self._db.path)

    def add_refuted(self, identifier: bytes, changes: Sequence[tuple[int, bytes]]) -> None:
        (last,) = self._db.fetch_one("SELECT coalesce(max(copy_seq), 0) FROM refuted_changes")
        copy = int(last) + 1
        for index, change_hash in changes:  # one history's changes at most
            self._db.execute(
                "INSERT OR IGNORE INTO refuted_changes (identifier, idx, change_hash, copy_seq) "
                "VALUES (?, ?, ?, ?)",
                (identifier, index, change_hash, copy),
            )
        # past the bound, the oldest copies' rows go (review 30a, refuted 1): a record only
        # keeps an authority's word on an identity out, so losing one never admits anyone
        (count,) = self._db.fetch_one("SELECT count(*) FROM refuted_changes")
        excess = int(count) - limits.MAX_REFUTED_CHANGES
        while excess > 0:
            (oldest,) = self._db.fetch_one("SELECT min(copy_seq) FROM refuted_changes")
            if oldest is None or int(oldest) >= copy:
                break  # this copy's own rows stay (one copy is within the bound)
            removed = self._db.execute(
                "DELETE FROM refuted_changes WHERE copy_seq = ?", (int(oldest),)
            ).rowcount
            excess -= removed

    def add_fork(
        self, identifier: bytes, index: int, change_hash: bytes, history: bytes, now: int
    ) -> bool:
        (mine, kept, total, local) = self._db.fetch_one(
            "SELECT count(*) FILTER (WHERE identifier = ?1), count(*) FILTER (WHERE identifier "
            "= ?1 AND change_hash = ?2), count(*), EXISTS (SELECT 1 FROM identities WHERE "
            "identifier = ?1 AND primary_key IS NOT NULL) FROM identity_forks",
            (identifier, change_hash),
        )
        if int(mine) >= limits.MAX_FORKS_PER_IDENTITY or int(kept):
            return False  # the first ones stay: later input never erases evidence
        if not local and not self._fork_room(identifier, int(total)):
            return False  # review 49c, forks 2: a local identity's are kept past the bound
        return (
            self._db.execute(
                "INSERT OR IGNORE INTO identity_forks "
                "(identifier, change_hash, idx, history, seen_at) VALUES (?, ?, ?, ?, ?)",
                (identifier, change_hash, index, history, now),
            ).rowcount
            == 1
        )

    def _fork_room(self, identifier: bytes, total: int) -> bool:
        """Whether a fork of `identifier` (not a local identity) may be kept: its source holds
        fewer than MAX_FORK_RECORDS_PER_SOURCE, and with MAX_FORK_RECORDS kept, the source
        holding the most holds two more than its own at least: that source's newest record
        goes (review 54m, identity 1: one member's delegates' forks crowded out every other's;
        a source holding one record, a lone victim's, never loses it). The sources are read
        on this path only (a fork not kept yet)."""
        (held,) = self._db.fetch_one(_FORKS_OF_SOURCE, (identifier,))
        if int(held) >= limits.MAX_FORK_RECORDS_PER_SOURCE:
            return False
        if total < limits.MAX_FORK_RECORDS:
            return True
        most = self._db.fetch_one(_FORK_SOURCE_MOST)
        if most is None or int(most[0]) < int(held) + 2:
            return False  # no source holds more than this one would: the first ones stay
        self._db.execute("DELETE FROM identity_forks WHERE seq = ?", (int(most[1]),))
        return True

    def forks(self, identifier: bytes) -> list[ForkRecord]:
        rows = self._db.fetch_all(
            "SELECT idx, change_hash, history, seen_at FROM identity_forks "
            "WHERE identifier = ? ORDER BY seq",
            (identifier,),
        )
        return [ForkRecord(int(i), bytes(h), bytes(data), int(at)) for i, h, data, at in rows]

    def drop_refuted(self, identifier: bytes, changes: Sequence[tuple[int, bytes]]) -> None:
        if (
            self._db.fetch_one(  # the usual case: nothing recorded for it, one read
                "SELECT 1 FROM refuted_changes WHERE identifier = ? LIMIT 1", (identifier,)
            )
            is None
        ):
            return
        for index, change_hash in changes:  # one history's changes at most
            self._db.execute(
                "DELETE FROM refuted_changes WHERE identifier = ? AND idx = ? AND change_hash = ?",
                (identifier, index, change_hash),
            )

    def change_index(self, identifier: bytes, change_hash: bytes) -> int | None:
        row = self._db.fetch_one(  # the identity's rows (its primary key range), scanned
            _CHANGE_INDEX, (identifier, change_hash)
        )
        return None if row is None else stored_whole(row[0], "change's index", self._db.path)

    def change_rows(self, identifier: bytes, first: int, last: int) -> list[ChangeRow]:
        rows = self._db.fetch_all(_CHANGE_ROWS, (identifier, first, last))
        return [_change_row(row, self._db.path) for row in rows]

    def long_local(self, identifiers: Sequence[bytes], changes: int) -> list[bytes]:
        where = "AND primary_key IS NOT NULL AND changes > ?"
        return [
            bytes(row[0]) for row in self._identities_in("identifier", identifiers, where, changes)
        ]

    def checkpoint(
        self, identifier: bytes, *, oldest_from: int | None = None
    ) -> tuple[bytes, int] | None:
        # each query walks its partial index from the newest supersession down (or from
        # `oldest_from` up) to the first that names one of the identity's own changes
        # (normally the first it reads)
        queries = _CHECKPOINTS_NEWEST if oldest_from is None else _CHECKPOINTS_OLDEST
        since = 0 if oldest_from is None else oldest_from + 1
        found = [self._db.fetch_one(sql, (identifier, since)) for sql in queries]
        path = self._db.path
        rows = [
            (
                stored_blob(row[0], "checkpoint's authority", path, _IDENTIFIER_BYTES),
                stored_whole(row[1], "checkpoint's index", path),
            )
            for row in found
            if row is not None
        ]
        if oldest_from is not None:
            return min(rows, key=lambda row: row[1], default=None)
        return max(rows, key=lambda row: row[1], default=None)


def _checkpoint_of(authority: str, changes: str) -> str:
    """A checkpoint's authority and index read typed (review 71x, wave4b 3: a TEXT authority
    failed bare, an INTEGER n was named the checkpoint's authority as n zero bytes)."""
    return f"{blob_sql(authority, _IDENTIFIER_BYTES)}, {whole_sql(changes + ' - 1')}"


_FEED_CHECKPOINT = (
    f"SELECT {_checkpoint_of('f.authority', 'f.changes')} "  # noqa: S608
    "FROM feed_entries f JOIN identity_changes c "
    "ON c.identifier = f.target AND c.idx = f.changes - 1 AND c.change_hash = f.change_hash "
    "WHERE f.target = ? AND f.kind = 3 AND f.changes >= ? "
    # only an authority the identity holds a credential from (which it announces its rotations
    # to): another authority's feed may name any change of it, one its own authorities never
    # named, and its verifiers would refuse it cut there (review 34a, presented 1)
    "AND EXISTS (SELECT 1 FROM held_credentials h "
    "WHERE h.identifier = f.target AND h.authority = f.authority) "
    "ORDER BY f.changes "
)
_HOSTED_CHECKPOINT = (
    f"SELECT {_checkpoint_of('a.identifier', 'r.changes')} FROM revocations r JOIN authority a "  # noqa: S608
    "JOIN identity_changes c ON c.identifier = r.target AND c.idx = r.changes - 1 "
    "AND c.change_hash = r.change_hash "
    "WHERE r.target = ? AND r.kind = 3 AND r.changes >= ? ORDER BY r.changes "
)
_CHECKPOINTS_NEWEST = (
    _FEED_CHECKPOINT + "DESC LIMIT 1",
    _HOSTED_CHECKPOINT + "DESC LIMIT 1",
)
_CHECKPOINTS_OLDEST = (_FEED_CHECKPOINT + "ASC LIMIT 1", _HOSTED_CHECKPOINT + "ASC LIMIT 1")
"""The newest (or oldest from an index) supersession naming one of a local identity's own
changes: in the feeds the node holds of the authorities the identity holds credentials from,
and in the feed of the authority it hosts."""


def _local(row: Sequence[Any], path: Path) -> LocalIdentityRecord:
    """A row of `_LOCAL_SELECT`; StorageError (node.db damaged) for a column of another type."""
    identifier = stored_blob(row[0], "identity's identifier", path, _IDENTIFIER_BYTES)
    created, changes, change_rows = (
        stored_whole(row[i], "identity's number", path) for i in (3, 5, 7)
    )
    history = _history(row[4], path)
    # its name and handles as `text_sql` reads them (review 71k, wave2d 2: a BLOB handle
    # was handed on, a 2 MiB name fetched whole, TEXT not UTF-8 failed the statement)
    name = None if row[1] is None else stored_text(row[1], "identity's name", path, _NAME_BYTES)
    primary = stored_text(row[2], "identity's primary key handle", path, _HANDLE_BYTES)
    following = None if row[6] is None else stored_text(row[6], "next key", path, _HANDLE_BYTES)
    return LocalIdentityRecord(
        identifier, name, primary, created, history, changes, following, change_rows
    )


def _change_row(row: Sequence[Any], path: Path) -> ChangeRow:
    """A row of `_CHANGE_ROWS`; StorageError (node.db damaged) for a column of another type."""
    most = limits.MAX_IDENTITY_HISTORY_BYTES
    body, signature = (stored_blob(row[i], "change's signed bytes", path, most) for i in (1, 2))
    previous = None if row[3] is None else stored_blob(row[3], "change's signature", path, most)
    index = stored_whole(row[0], "change's index", path)
    return index, body, signature, previous, _change_hash(row[4], path)


def _change_hash(value: object, path: Path) -> bytes:
    return stored_blob(value, "change's hash", path, _IDENTIFIER_BYTES)


def _history(value: object, path: Path) -> bytes:
    return stored_blob(value, "identity's history", path, limits.MAX_IDENTITY_HISTORY_BYTES)


def _record_bytes(record: str) -> bytes:
    """A `retired_keys` record's bytes as stored (`_record_text`'s inverse)."""
    return record.encode("utf-8", "surrogateescape")


def _record_text(value: bytes) -> str:
    """A `retired_keys` record read as bytes: its text, bytes that are not UTF-8 escaped."""
    return bytes(value).decode("utf-8", "surrogateescape")
