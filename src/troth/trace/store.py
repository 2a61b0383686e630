"""The trace log's storage: `<node>/trace.db`, a SQLite database of its own (docs/traces.md,
"Storage").

WAL journal with `synchronous = FULL`: a commit is fsynced before COMMIT returns, so an
acknowledged append survives a crash of the process and a power loss; group commit
(`troth.trace.log`) shares one fsync among concurrent appenders. One connection per thread;
SQLite's locking (BEGIN IMMEDIATE, busy timeout) orders writers across threads and processes.
Nothing here repairs damage: what does not add up is reported by the verifier.

    meta          name -> value: 'size' (records appended), 'log_identity' (32-byte identifier)
    leaves        idx, record id, leaf hash, envelope (the exact bytes appended), disclosures
                  (canonical CBOR {field: [salt, value]}, NULL when none: rewriting it without
                  a field redacts that value); record ids are time-ordered (UUIDv7 layout), so
                  their index grows at its right edge
    nodes         (level, idx) -> hash of the perfect subtree, for levels 4, 8, 12, ...
    agents        agent -> seq, hash, time and key change of its latest record
    histories     identifier -> newest verified history (agents and the log identity)
    attestations  keyid -> (identifier, attestation) of every key that signed a record or a
                  checkpoint
    chains        digest -> delegation chain bytes that records name with at = "log"
    checkpoints   size -> root, time, signed note
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from troth.errors import ConfigError, StorageError

__all__ = ["NODE_LEVEL_STRIDE", "TraceStore"]

NODE_LEVEL_STRIDE: Final = 4
"""Perfect subtrees are stored at levels 4, 8, 12, ...: 1/15 of a row per append; any other
subtree is at most 15 stored hashes away."""
_BUSY_TIMEOUT_MS: Final = 30_000

_MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
    CREATE TABLE leaves (
        idx INTEGER PRIMARY KEY, record_id TEXT NOT NULL UNIQUE, leaf BLOB NOT NULL,
        envelope BLOB NOT NULL, disclosures BLOB
    );
    CREATE TABLE nodes (
        level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
        PRIMARY KEY (level, idx)
    ) WITHOUT ROWID;
    CREATE TABLE agents (
        agent BLOB PRIMARY KEY, seq INTEGER NOT NULL, hash BLOB NOT NULL, time INTEGER NOT NULL,
        change INTEGER NOT NULL
    );
    CREATE TABLE histories (
        identifier BLOB PRIMARY KEY, history BLOB NOT NULL, changes INTEGER NOT NULL,
        current BLOB NOT NULL
    );
    CREATE TABLE attestations (
        keyid TEXT PRIMARY KEY, identifier BLOB NOT NULL, attestation BLOB NOT NULL
    );
    CREATE TABLE chains (digest BLOB PRIMARY KEY, chain BLOB NOT NULL);
    CREATE TABLE checkpoints (
        size INTEGER PRIMARY KEY, root BLOB NOT NULL, time INTEGER NOT NULL, note BLOB NOT NULL
    );
    INSERT INTO meta (name, value) VALUES ('size', 0);
    """,
)


class TraceStore:
    """The SQLite file of one trace log: per-thread connections and `write()` transactions."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        if not self.path.exists():
            try:  # 0600 before SQLite creates it (its -wal and -shm files copy the mode)
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            except OSError as exc:
                raise StorageError(f"cannot create {self.path}: {exc}") from exc
        self._migrate()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = FULL")
            except sqlite3.Error as exc:
                raise StorageError(f"cannot open {self.path}: {exc}") from exc
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT (durable when it returns), ROLLBACK on any exception."""
        conn = self.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot begin a transaction: {exc}") from exc
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise StorageError(f"commit failed: {exc}") from exc

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: one consistent snapshot of the log."""
        conn = self.connection()
        try:
            conn.execute("BEGIN")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot begin a read: {exc}") from exc
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def fetch_one(self, sql: str, params: tuple[object, ...] = ()) -> Any:
        try:
            return self.connection().execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(str(exc)) from exc

    def fetch_all(self, sql: str, params: tuple[object, ...] = ()) -> list[Any]:
        try:
            return self.connection().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(str(exc)) from exc

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    def _migrate(self) -> None:
        with self.write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(_MIGRATIONS):
                raise ConfigError(
                    f"{self.path} has schema {version}; this troth knows {len(_MIGRATIONS)}"
                )
            for number in range(version, len(_MIGRATIONS)):
                for statement in _MIGRATIONS[number].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number + 1}")
