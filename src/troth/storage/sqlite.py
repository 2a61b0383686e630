"""SQLite: the default store of a node (`node.db`), one connection per thread.

Durability (docs/storage.md): WAL journal. `synchronous=NORMAL` (default) makes every commit
durable against a crash of the process: the transaction is in the WAL file before COMMIT
returns. A power loss or kernel crash may undo the last commits since the previous WAL
checkpoint, never corrupt the database. `durability="full"` fsyncs the WAL on every commit
(`synchronous=FULL`) and survives power loss too (~228 us against ~71 us for a one-identity
transaction on this machine, docs/storage.md).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Literal

from troth.errors import ConfigError, ConflictError, StorageError

__all__ = ["Durability", "SqliteDatabase"]

Durability = Literal["normal", "full"]

_BUSY_TIMEOUT_MS: Final = 10_000
_CACHE_KIB: Final = 32 * 1024  # page cache per connection (SQLite's default is 2 MiB)

# Schema migrations, applied in order; PRAGMA user_version records how many ran.
_MIGRATIONS: Final[tuple[str, ...]] = (
    """
    -- key_id: a random 63-bit integer (the rowid itself: one B-tree, never reused)
    CREATE TABLE vault_keys (
        key_id INTEGER PRIMARY KEY, key_type INTEGER NOT NULL, purpose INTEGER NOT NULL,
        sealed BLOB NOT NULL, created_at INTEGER NOT NULL
    );
    CREATE TABLE vault_meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
    CREATE TABLE identities (
        identifier BLOB PRIMARY KEY, history BLOB NOT NULL, changes INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        -- set for local identities (this node holds the primary key), NULL for imported ones
        primary_key TEXT, name TEXT, created_at INTEGER
    );
    CREATE UNIQUE INDEX identities_name ON identities (name) WHERE name IS NOT NULL;
    CREATE TABLE purpose_keys (
        identifier BLOB NOT NULL REFERENCES identities(identifier), purpose INTEGER NOT NULL,
        key_handle TEXT NOT NULL, attestation BLOB NOT NULL, PRIMARY KEY (identifier, purpose)
    );
    """,
    """
    -- the authority hosted by this node (at most one)
    CREATE TABLE authority (
        identifier BLOB PRIMARY KEY, name TEXT NOT NULL, credential_ttl INTEGER NOT NULL,
        delegation_depth INTEGER NOT NULL, created_at INTEGER NOT NULL
    );
    CREATE TABLE members (
        identifier BLOB PRIMARY KEY, attributes BLOB NOT NULL, added_by BLOB NOT NULL,
        added_at INTEGER NOT NULL
    );
    -- enrollment tickets: only the SHA-256 of the code is stored
    CREATE TABLE tickets (
        code_hash BLOB PRIMARY KEY, attributes BLOB NOT NULL, uses_left INTEGER NOT NULL,
        expires_at INTEGER NOT NULL, created_by BLOB NOT NULL, created_at INTEGER NOT NULL
    );
    CREATE TABLE issued_credentials (
        id BLOB PRIMARY KEY, subject BLOB NOT NULL, expires_at INTEGER NOT NULL,
        issued_at INTEGER NOT NULL
    );
    CREATE INDEX issued_by_subject ON issued_credentials (subject, expires_at);
    CREATE TABLE revocations (seq INTEGER PRIMARY KEY, entry BLOB NOT NULL, head BLOB NOT NULL);
    -- credentials (chains) held by this node's identities
    CREATE TABLE held_credentials (
        identifier BLOB NOT NULL, id BLOB NOT NULL, chain BLOB NOT NULL, authority BLOB NOT NULL,
        expires_at INTEGER NOT NULL, stored_at INTEGER NOT NULL, PRIMARY KEY (identifier, id)
    );
    -- the newest revocation feed this node has verified, per authority
    CREATE TABLE feeds (
        authority BLOB PRIMARY KEY, feed BLOB NOT NULL, count INTEGER NOT NULL,
        issued_at INTEGER NOT NULL
    );
    """,
    """
    -- authorities this node trusts (it enrolled with them), and the route to reach each
    CREATE TABLE trusted_authorities (
        identifier BLOB PRIMARY KEY, address TEXT NOT NULL, added_at INTEGER NOT NULL
    );
    """,
    """
    -- pre-rotation: the handle of a local identity's committed next primary key (NULL for
    -- imported identities), used only by the rotation that reveals it
    ALTER TABLE identities ADD COLUMN next_key TEXT;
    """,
    """
    -- revocation feed v2 (docs/formats.md, "Revocation feed"): v1 entries are not carried over
    -- (nothing was released). The authority's entries, with the fields they are looked up by:
    -- one revocation per credential or identity (idempotence), the newest supersession per
    -- identifier, and the entries charged to each member in the last hour (its quota)
    DROP TABLE revocations;
    CREATE TABLE revocations (
        seq INTEGER PRIMARY KEY, entry BLOB NOT NULL, head BLOB NOT NULL, kind INTEGER NOT NULL,
        target BLOB NOT NULL, revoked_at INTEGER NOT NULL, charged_to BLOB, changes INTEGER,
        change_hash BLOB
    );
    CREATE UNIQUE INDEX revocations_once ON revocations (kind, target) WHERE kind < 3;
    CREATE INDEX revocations_superseded ON revocations (target, changes) WHERE kind = 3;
    CREATE INDEX revocations_charged ON revocations (charged_to, revoked_at)
        WHERE charged_to IS NOT NULL;
    ALTER TABLE authority ADD COLUMN revocation_quota INTEGER NOT NULL DEFAULT 100;
    -- a holder's verified copy of each authority's feed: where it ends, and its entries (the
    -- in-memory index is rebuilt from them without verifying again)
    DROP TABLE feeds;
    CREATE TABLE feed_state (
        authority BLOB PRIMARY KEY, count INTEGER NOT NULL, head BLOB NOT NULL,
        latest INTEGER NOT NULL, issued_at INTEGER NOT NULL
    );
    CREATE TABLE feed_entries (
        authority BLOB NOT NULL, seq INTEGER NOT NULL, kind INTEGER NOT NULL,
        target BLOB NOT NULL, changes INTEGER, change_hash BLOB, PRIMARY KEY (authority, seq)
    ) WITHOUT ROWID;
    -- up to which change count each local identity's rotation was announced to each authority
    CREATE TABLE announcements (
        identifier BLOB NOT NULL, authority BLOB NOT NULL, changes INTEGER NOT NULL,
        PRIMARY KEY (identifier, authority)
    );
    """,
)


class SqliteDatabase:
    """A SQLite file with troth's schema; `transaction()` is the unit of work."""

    def __init__(
        self,
        path: str | Path,
        durability: Durability = "normal",
        migrations: tuple[str, ...] = _MIGRATIONS,
    ) -> None:
        """Open (creating and migrating) the database; `migrations` is the schema of a file
        other than node.db (the trace log's)."""
        self._migrations = migrations
        if durability not in ("normal", "full"):
            raise ConfigError(f"unknown durability {durability!r} (normal or full)")
        self.path = Path(path)
        self._synchronous = "FULL" if durability == "full" else "NORMAL"
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        if not self.path.exists():
            try:  # create it 0600 before SQLite does (its -wal/-shm files copy this mode)
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            except OSError as exc:
                raise StorageError(f"cannot create {self.path}: {exc}") from exc
        self._migrate()

    # -- connections and transactions ---------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute(f"PRAGMA synchronous = {self._synchronous}")
                conn.execute("PRAGMA foreign_keys = ON")
                conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
            except sqlite3.Error as exc:
                raise StorageError(f"cannot open {self.path}: {exc}") from exc
            self._local.conn = conn
            self._local.depth = 0
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception. Re-entrant per thread."""
        conn = self.connection()
        if self._local.depth:
            self._local.depth += 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot begin a transaction: {exc}") from exc
        self._local.depth = 1
        try:
            yield
        except BaseException:
            self._local.depth = 0
            conn.execute("ROLLBACK")
            raise
        self._local.depth = 0
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise StorageError(f"commit failed: {exc}") from exc

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
        """Run one statement, mapping SQLite errors to StorageError / ConflictError."""
        try:
            return self.connection().execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise ConflictError(str(exc)) from exc
        except sqlite3.Error as exc:
            raise StorageError(str(exc)) from exc

    def fetch_one(self, sql: str, params: tuple[object, ...] = ()) -> Any:
        """The first row of a query (or None), errors mapped like `execute`."""
        try:
            return self.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(str(exc)) from exc

    def fetch_all(self, sql: str, params: tuple[object, ...] = ()) -> list[Any]:
        try:
            return self.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(str(exc)) from exc

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    # -- schema -------------------------------------------------------------------------------

    def _migrate(self) -> None:
        conn = self.connection()
        with self.transaction():
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(self._migrations):
                raise ConfigError(
                    f"{self.path} has schema {version}; this troth knows {len(self._migrations)}"
                )
            for number in range(version, len(self._migrations)):
                for statement in self._migrations[number].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number + 1}")
