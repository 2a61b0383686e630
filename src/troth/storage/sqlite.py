"""SQLite: the default store of a node (`node.db`), one connection per thread.

Durability (docs/storage.md): WAL journal. `synchronous=NORMAL` (default) makes every commit
durable against a crash of the process: the transaction is in the WAL file before COMMIT
returns. A power loss or kernel crash may undo the last commits since the previous WAL
checkpoint, never corrupt the database. `durability="full"` fsyncs the WAL on every commit
(`synchronous=FULL`) and survives power loss too (~228 us against ~71 us for a one-identity
transaction on this machine, docs/storage.md).

Busy database (docs/storage.md, "Busy database"): a write waits for the write lock another
connection holds, retrying with jittered exponential backoff for up to `BUSY_TIMEOUT_SECONDS`
(TROTH_BUSY_TIMEOUT overrides it), then fails with a StorageError naming the processes that
held the lock. Opening a database whose schema is current takes no write lock.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from troth.errors import ConfigError, ConflictError, StorageError
from troth.storage.peers import PeerLock
from troth.storage.raised_times import keep_raise_times_in_counts
from troth.storage.row_types import schema_of

__all__ = [
    "BUSY_TIMEOUT_ENV",
    "BUSY_TIMEOUT_SECONDS",
    "Durability",
    "Migration",
    "SqliteDatabase",
]

Durability = Literal["normal", "full"]
T = TypeVar("T")

BUSY_TIMEOUT_SECONDS: Final = 30.0
"""How long a write waits for a write lock held by another connection before it fails."""
BUSY_TIMEOUT_ENV: Final = "TROTH_BUSY_TIMEOUT"
"""Overrides BUSY_TIMEOUT_SECONDS (seconds, e.g. `5` or `0.5`)."""
_STATEMENT_WAIT_MS: Final = 50  # SQLite's own busy handler, within one attempt
_BACKOFF_FIRST: Final = 0.005  # seconds before the first retry, doubled up to _BACKOFF_MAX
_BACKOFF_MAX: Final = 0.25
_WAL_WRITE_LOCK: Final = 120  # the byte of the -shm file a WAL writer locks (SQLite wal.c)
_CACHE_KIB: Final = 32 * 1024  # page cache per connection (SQLite's default is 2 MiB)
_OPEN_FAILURES: Final = (sqlite3.Error, UnicodeDecodeError)
"""What opening a file and reading its schema raises: SQLite's errors, and the
UnicodeDecodeError Python's sqlite3 raises in their place when SQLite's message quotes bytes
of a damaged schema that are not UTF-8 (review 53f, node home 2: a ValueError, exit 2)."""

Migration = str | Callable[[sqlite3.Connection], None]
"""One schema migration: SQL statements (separated by `;`), or a function that migrates
through the connection it is given (inside the migrating transaction)."""

# Schema migrations, applied in order; PRAGMA user_version records how many ran.
_MIGRATIONS: Final[tuple[Migration, ...]] = (
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
    """
    -- a local identity's changes, one row per change, never rewritten (docs/storage.md,
    -- "Identities"): from the first rotation whose presented history is cut (it adds every
    -- change), each rotation adds its own, and `change_rows` counts them (0: none yet)
    CREATE TABLE identity_changes (
        identifier BLOB NOT NULL, idx INTEGER NOT NULL, body BLOB NOT NULL,
        signature BLOB NOT NULL, previous_signature BLOB, change_hash BLOB NOT NULL,
        PRIMARY KEY (identifier, idx)
    ) WITHOUT ROWID;
    ALTER TABLE identities ADD COLUMN change_rows INTEGER NOT NULL DEFAULT 0;
    -- the supersessions of a holder's feeds by identifier: checkpoints of local histories
    CREATE INDEX feed_entries_superseded ON feed_entries (target, changes) WHERE kind = 3;
    -- the authority: which credential each ticket redemption issued (a repeat of the same
    -- enrollment is answered with it: never a second credential, never a second use)
    CREATE TABLE redemptions (
        code_hash BLOB NOT NULL, member BLOB NOT NULL, credential BLOB NOT NULL,
        chain BLOB NOT NULL, ticket_expires_at INTEGER NOT NULL, redeemed_at INTEGER NOT NULL,
        PRIMARY KEY (code_hash, member)
    );
    -- a holder's enrollment recorded before its request is sent, cleared when the
    -- credential is stored (resumed after a crash)
    CREATE TABLE pending_enrollments (
        identifier BLOB NOT NULL, authority BLOB NOT NULL, ticket TEXT NOT NULL,
        address TEXT NOT NULL, started_at INTEGER NOT NULL, PRIMARY KEY (identifier, authority)
    );
    """,
    """
    -- the authorities whose chains this node verified for an identity, when the newest of
    -- them expires, the member at its root (whose share of the rows it counts against), and
    -- whether a sweep found that authority's word on it (kept for good): their word on it
    -- counts whatever it shows later (docs/storage.md, "Vouchers")
    CREATE TABLE vouchers (
        identifier BLOB NOT NULL, authority BLOB NOT NULL, expires_at INTEGER NOT NULL,
        member BLOB NOT NULL, kept INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (identifier, authority)
    ) WITHOUT ROWID;
    CREATE INDEX vouchers_lapsed ON vouchers (authority, expires_at) WHERE kept = 0;
    CREATE INDEX vouchers_member ON vouchers (member, authority, expires_at) WHERE kept = 0;
    """,
    """
    -- the authority: each member credential as it went out (without the authority's
    -- history), answered again at the member's bound of live credentials (review 25,
    -- authority 2), NULL for a VC export and for rows written before this migration
    ALTER TABLE issued_credentials ADD COLUMN credential BLOB;
    """,
    """
    -- the changes of stored copies shown made up (troth.identity.known: review 26b, refuted
    -- 2), written in the transaction that replaced the copy: an authority whose held feed
    -- names one of them holds no voucher for that identity, in any process, after a restart
    -- too (docs/storage.md, "Vouchers")
    CREATE TABLE refuted_changes (
        identifier BLOB NOT NULL, idx INTEGER NOT NULL, change_hash BLOB NOT NULL,
        PRIMARY KEY (identifier, idx, change_hash)
    ) WITHOUT ROWID;
    """,
    """
    -- review 27h, gap: the oldest change (index, hash) of the history a voucher's chains were
    -- verified with (NULL: every history, as for the rows written before this migration),
    -- and whether a stored copy's link to its identifier was checked here (a full history, or
    -- one extending such a copy) rather than only a checkpoint's word (1 for older rows): a
    -- copy from a checkpoint binds a full history only when an authority attesting it has
    -- standing over that history (docs/formats.md, "A stored copy from a checkpoint")
    ALTER TABLE vouchers ADD COLUMN since_idx INTEGER;
    ALTER TABLE vouchers ADD COLUMN since_hash BLOB;
    ALTER TABLE identities ADD COLUMN linked INTEGER NOT NULL DEFAULT 1;
    """,
    """
    -- review 30a, refuted 1: the replaced copy each refuted change was recorded with, in order
    -- (0 for older rows): past MAX_REFUTED_CHANGES rows the oldest copies' rows go first
    ALTER TABLE refuted_changes ADD COLUMN copy_seq INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX refuted_copies ON refuted_changes (copy_seq);
    """,
    """
    -- review 39b, mcp 2: the authorities whose bundles grant a published MCP server's tools,
    -- by the server's name (space-separated identifiers), recorded when they were first fixed
    -- (or named): the same name published again naming none keeps them across restarts
    -- (docs/policy.md, "MCP over secure channels", and docs/formats.md, "mcp_grantors")
    CREATE TABLE IF NOT EXISTS mcp_grantors (
        name TEXT PRIMARY KEY, grantors TEXT NOT NULL, recorded_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
    """
    -- review 47f, rotate 1 and token keys 1: the keys a rotation (or a purpose key's
    -- renewal) retired from a vault whose keys are not rows here (a PKCS#11 token's), and
    -- the token keys a compromised rotation withdrew, by handle, written in the transaction
    -- that retires them and deleted once the vault deleted the keys: a process killed in
    -- between leaves them here for the next one to delete
    -- (`IdentityService.forget_retired`, docs/storage.md "Recovery rules")
    CREATE TABLE IF NOT EXISTS retired_keys (handle TEXT PRIMARY KEY) WITHOUT ROWID;
    """,
    """
    -- review 48m, revcrash 2: the authorities a link revocation made here is under way with,
    -- and where each is reached, written (committed) before the authority is asked and
    -- deleted once this node's copy of its feed holds the entry: a process killed in between
    -- leaves it here, and the node syncs that feed before it hands out a chain of that
    -- authority again (docs/credentials.md, "Revocation is real", and docs/storage.md)
    CREATE TABLE IF NOT EXISTS feed_syncs_due (
        id INTEGER PRIMARY KEY, authority BLOB NOT NULL, address TEXT NOT NULL,
        marked_at INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS feed_syncs_due_authority ON feed_syncs_due (authority);
    """,
    """
    -- review 49c, forks 1: verified histories refused as forks of the stored copy, kept as
    -- evidence (their first change the stored copy does not hold is signed with the
    -- identity's keys, as the stored copy's change at that index is: two rotations, one by
    -- a copy's holder), the first MAX_FORKS_PER_IDENTITY of an identity and MAX_FORK_RECORDS
    -- in all (`IdentityService.forks`, docs/storage.md "Schema")
    CREATE TABLE IF NOT EXISTS identity_forks (
        seq INTEGER PRIMARY KEY, identifier BLOB NOT NULL, change_hash BLOB NOT NULL,
        idx INTEGER NOT NULL, history BLOB NOT NULL, seen_at INTEGER NOT NULL,
        UNIQUE (identifier, change_hash)
    );
    """,
    """
    -- review 51d, rollback 1-2: each scope's count of the irreversible writes this store
    -- made (a ticket redeemed, a lease revoked: troth.storage.rollback), raised in the
    -- transaction of the write, and the guard file beside node.db (`node.db.guard`) raised
    -- to it after the commit: a store whose count is behind its guard's is a restored copy.
    -- `restored_*`: the last time one was found, and what it was found with (node status)
    CREATE TABLE IF NOT EXISTS rollback_counters (
        scope TEXT PRIMARY KEY, counter INTEGER NOT NULL, restored_at INTEGER,
        restored_counter INTEGER, restored_guard INTEGER, restored_voided INTEGER
    ) WITHOUT ROWID;
    """,
    """
    -- review 53h, due 2: a mark's number (its id) is never given twice (AUTOINCREMENT): a
    -- node whose syncs of an authority stopped at its newest mark tries once more at a newer
    -- one (troth.node.duetries), and SQLite gave a deleted newest row's id again, so a mark
    -- made after a sync elsewhere cleared that one read as not newer. The rows keep their ids
    CREATE TABLE feed_syncs_due_ids (
        id INTEGER PRIMARY KEY AUTOINCREMENT, authority BLOB NOT NULL, address TEXT NOT NULL,
        marked_at INTEGER NOT NULL
    );
    INSERT INTO feed_syncs_due_ids (id, authority, address, marked_at)
        SELECT id, authority, address, marked_at FROM feed_syncs_due;
    DROP TABLE feed_syncs_due;
    ALTER TABLE feed_syncs_due_ids RENAME TO feed_syncs_due;
    CREATE INDEX feed_syncs_due_authority ON feed_syncs_due (authority);
    """,
    """
    -- review 54x, identity 1: the source of an identity's fork evidence, the member at the
    -- root of the first voucher row recorded for it, written once (a later chain renewing or
    -- adding a row never moves it) and dropped with its last voucher row. For the rows
    -- before this migration, whose first is not known, the lowest member (the rule before)
    -- (docs/storage.md, "Schema")
    CREATE TABLE IF NOT EXISTS voucher_sources (
        identifier BLOB PRIMARY KEY, member BLOB NOT NULL
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO voucher_sources (identifier, member)
        SELECT identifier, min(member) FROM vouchers GROUP BY identifier;
    """,
    keep_raise_times_in_counts,  # review 66i, rotate 1: a scope's raise time in its count's row
    """
    -- review 69f, enroll 1: an observed copy's linked = 1, review 27h's default or a link
    -- checked since (not told apart), is 2, not known (docs/storage.md, "Identities")
    UPDATE identities SET linked = 2 WHERE linked = 1 AND primary_key IS NULL;
    """,
)


class SqliteDatabase:
    """A SQLite file with troth's schema; `transaction()` is the unit of work."""

    def __init__(
        self,
        path: str | Path,
        durability: Durability = "normal",
        *,
        busy_timeout: float | None = None,
        migrations: tuple[Migration, ...] = _MIGRATIONS,
    ) -> None:
        """Open (creating and migrating) the database; `migrations` is the schema of a file
        other than node.db (the trace log's): SQL statements, or a function given the
        connection inside the migrating transaction (a change SQL alone cannot make)."""
        self._migrations = migrations
        if durability not in ("normal", "full"):
            raise ConfigError(f"unknown durability {durability!r} (normal or full)")
        self.path = Path(path)
        self.durability: Durability = durability
        self.busy_timeout = _busy_timeout() if busy_timeout is None else busy_timeout
        self._synchronous = "FULL" if durability == "full" else "NORMAL"
        self._local = threading.local()
        self._all: list[tuple[sqlite3.Connection, threading.Thread | None]] = []
        """Every open connection, with the thread whose it is (None: a `dedicated` one)."""
        self._all_lock = threading.Lock()
        self._closed = False
        if not self.path.exists():
            try:  # create it 0600 before SQLite does (its -wal/-shm files copy this mode)
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            except OSError as exc:
                raise StorageError(f"cannot create {self.path}: {exc}") from exc
        self._migrate()

    # -- connections and transactions ---------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use); StorageError once `close`d."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            self._check_open()
            try:
                conn = self._when_free(self._connect, "open")
            except _OPEN_FAILURES as exc:
                raise StorageError(f"cannot open {self.path}: {_reason(exc)}") from exc
            self._local.conn = conn
            self._local.depth = 0
            self._local.cursor = conn.cursor()  # `run`'s
            self._local.pragma = conn.cursor()  # `data_version`'s in a transaction (61m)
            self._local.version = None  # `data_version` inside this thread's transaction
            with self._all_lock:  # and those of threads that ended closed (review 64n, api 5:
                # each kept till `close`, one per run of a node handle's storage thread)
                ended = [c for c, thread in self._all if thread and not thread.is_alive()]
                self._all = [(c, t) for c, t in self._all if c not in ended]
                self._all.append((conn, threading.current_thread()))
            for old in ended:
                old.close()
        return conn

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {_STATEMENT_WAIT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")  # a fresh file: takes a lock once
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        except BaseException:
            conn.close()
            raise
        return conn

    def dedicated(self) -> sqlite3.Connection:
        """A connection of its own, not a thread's (closed with the database), for a user that
        makes its use exclusive across threads itself: the trace log's commit leader, so that
        every commit finds its page cache and prepared statements warm (in WAL mode a
        connection drops its page cache whenever another connection wrote)."""
        self._check_open()
        try:
            conn = self._when_free(self._connect, "open")
        except _OPEN_FAILURES as exc:
            raise StorageError(f"cannot open {self.path}: {_reason(exc)}") from exc
        with self._all_lock:
            self._all.append((conn, None))
        return conn

    def transaction(self) -> AbstractContextManager[None]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception. Re-entrant per thread.
        Waiting for the write lock is retried up to `busy_timeout` (docs/storage.md).
        Callbacks given `after_commit` run once the outermost one committed."""
        return _Transaction(self)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once this thread's outermost `transaction()` commits, or at once
        outside one; dropped when it rolls back. Every callback of a commit runs; the first
        that raised is raised after the last. For what must follow only a committed write
        (a process's cache of it, hooks told of it): an inner transaction's end is no commit
        (review 31a, requests 1)."""
        if getattr(self._local, "depth", 0):
            self._local.after.append(callback)
        else:
            callback()

    def after_commit_once(self, callback: Callable[[], None]) -> bool:
        """`after_commit(callback)` unless this transaction already holds an equal one (a bound
        method of the same object): a batch of writes that each ask for it runs it once.
        Whether it was added (or, outside a transaction, run)."""
        if getattr(self._local, "depth", 0) and callback in self._local.after:
            return False
        self.after_commit(callback)
        return True

    @contextmanager
    def transaction_on(self, conn: sqlite3.Connection) -> Iterator[None]:
        """`transaction()` on `conn` (a `dedicated` connection; not re-entrant)."""
        self._begin(conn)
        try:
            yield
        except BaseException:
            _rollback(conn)
            raise
        self._commit(conn)

    def _begin(self, conn: sqlite3.Connection) -> None:
        try:
            self._when_free(lambda: conn.execute("BEGIN IMMEDIATE"), "begin a transaction")
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot begin a transaction: {exc}") from exc

    def _commit(self, conn: sqlite3.Connection) -> None:
        if not conn.in_transaction:
            raise self._abandoned()
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            raise StorageError(f"{self.path}: commit failed: {exc}") from exc

    @property
    def in_transaction(self) -> bool:
        """Whether this thread is inside `transaction()`."""
        return bool(getattr(self._local, "depth", 0))

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
        """Run one statement, mapping SQLite errors to StorageError / ConflictError. Outside a
        transaction (its own), a busy database is retried like `transaction()`."""
        conn = self.connection()
        try:
            if self._local.depth:
                if not conn.in_transaction:
                    raise self._abandoned()
                return conn.execute(sql, params)
            return self._when_free(lambda: conn.execute(sql, params), "use")
        except sqlite3.IntegrityError as exc:
            raise ConflictError(str(exc)) from exc
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc

    def execute_many(self, sql: str, rows: Iterable[tuple[object, ...]]) -> None:
        """`executemany` on this thread's connection, errors mapped like `execute`'s (inside
        a transaction: not retried when busy, as a statement inside one never is)."""
        conn = self.connection()
        if getattr(self._local, "depth", 0) and not conn.in_transaction:
            raise self._abandoned()
        try:
            conn.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise ConflictError(str(exc)) from exc
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc

    def run(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
        """`execute`, inside this thread's `transaction()` on the thread's one reusable cursor
        instead of a new one per statement (~0.3 us each; the lease issue path's statements:
        review 53a). The cursor is this thread's next `run`'s too: read what it returns at
        once, never across another `run`, and a query to its end (`fetchall`): a query left
        unfinished would hold this connection on its snapshot past the commit."""
        local = self._local
        if not getattr(local, "depth", 0):
            return self.execute(sql, params)
        if not local.conn.in_transaction:
            raise self._abandoned()
        try:
            return local.cursor.execute(sql, params)  # type: ignore[no-any-return]
        except sqlite3.IntegrityError as exc:
            raise ConflictError(str(exc)) from exc
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc

    def run_rows(self, sql: str, params: tuple[object, ...] = ()) -> list[Any]:
        """Every row of a query, read to its end, errors mapped like `fetch_all`: inside this
        thread's `transaction()` through `run` (its kept cursor), outside one `fetch_all`."""
        local = self._local
        if not getattr(local, "depth", 0):
            return self.fetch_all(sql, params)
        if not local.conn.in_transaction:
            raise self._abandoned()
        try:
            return local.cursor.execute(sql, params).fetchall()  # type: ignore[no-any-return]
        except sqlite3.IntegrityError as exc:
            raise ConflictError(str(exc)) from exc
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc

    def data_version(self) -> int:
        """`PRAGMA data_version` on this thread's connection: it changes when, and only when,
        another connection (another process's, or another thread's of this one) committed to
        the file since this connection last asked (sqlite.org/pragma.html#pragma_data_version).
        A few microseconds: the software vault asks it before each use of a cached key.

        Inside this thread's `transaction()` the first answer is kept for the rest of it: a
        connection's data version is read from its open read transaction, which no later
        commit of another connection changes (and BEGIN IMMEDIATE holds the write lock: none
        can commit), so asking again returns the same number (a rotation asked 5 times:
        review 54a). Only while SQLite's transaction is open (`in_transaction`): one it rolled
        back itself (a full disk, an I/O error) is asked again."""
        local = self._local
        try:
            if getattr(local, "depth", 0) and local.conn.in_transaction:
                version: int | None = local.version
                if version is None:  # its own kept cursor (not `run`'s: a sign may come
                    # mid-read); one row, read to its end by `fetchone` (its step past it)
                    row = local.pragma.execute("PRAGMA data_version").fetchone()
                    version = local.version = int(row[0])
                return version
            return int(self.connection().execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc

    def fetch_one(self, sql: str, params: tuple[object, ...] = ()) -> Any:
        """The first row of a query (or None), errors mapped like `execute`."""
        try:
            return self.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc

    def truncate_wal(self) -> bool:
        """Checkpoint the write-ahead log and truncate it (`wal_checkpoint(TRUNCATE)`): its
        frames hold the older versions of pages, deleted values' included. False when a
        reader kept it from being truncated. Outside a transaction only."""
        row = self.fetch_one("PRAGMA wal_checkpoint(TRUNCATE)")
        return row is not None and not row[0]

    def fetch_all(self, sql: str, params: tuple[object, ...] = ()) -> list[Any]:
        try:
            return self.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc

    def _failed(self, exc: sqlite3.Error) -> StorageError:
        """A statement's failure, naming this file: a damaged page ("database disk image is
        malformed"), a full disk, a read-only file are found by whichever statement meets
        them, and a node's home holds several databases (review 44d, node home 2)."""
        return StorageError(f"{self.path}: {exc}")

    def _abandoned(self) -> StorageError:
        """A statement (or the commit) of a transaction SQLite rolled back itself when a
        statement in it failed (a full disk, an I/O error, a damaged page: it may undo the
        whole transaction, not the statement only). Run, it would commit on its own
        (autocommit), outside the unit of work (review 56d, storage 1)."""
        return StorageError(
            f"{self.path}: the transaction was rolled back after a statement in it failed; "
            "nothing of it was written"
        )

    def peer_lock(self, kind: str) -> PeerLock:
        """A hold on `<this file>.<kind>` that tells whether another user of `kind` (another
        process's, or another object's here) has this database open (troth.storage.peers)."""
        return PeerLock(self.path.with_name(f"{self.path.name}.{kind}"))

    def close(self) -> None:
        """Close every connection; the database is closed for good (a second call does
        nothing). Its users hold it open: a node's hold on `node.db.vault`, which it lets go
        when it closes, is what keeps `troth vault rekey` away, so a closed database opens no
        new connection (review 49a, handles 1: a closed node reopened one, and after a rekey
        sealed a new key under the old KEK)."""
        with self._all_lock:
            self._closed = True
            for conn, _ in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"{self.path} is closed: open it again (a new handle)")

    # -- a busy database ------------------------------------------------------------------------

    def _when_free(self, attempt: Callable[[], T], what: str) -> T:
        """`attempt()`, retried with jittered exponential backoff while another connection
        holds the lock it needs, for up to `busy_timeout` seconds; then a StorageError naming
        the processes holding the write lock."""
        deadline: float | None = None
        delay = _BACKOFF_FIRST
        while True:
            try:
                return attempt()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.busy_timeout
                if now >= deadline:
                    raise StorageError(self._busy_report(what)) from None
                time.sleep(min(delay * random.uniform(0.5, 1.0), deadline - now))
                delay = min(delay * 2, _BACKOFF_MAX)

    def _busy_report(self, what: str) -> str:
        holders = ", ".join(_describe_process(pid) for pid in self.lock_holders())
        return (
            f"cannot {what} {self.path}: the database stayed locked for {self.busy_timeout:g} s "
            f"(the limit; {BUSY_TIMEOUT_ENV} changes it); write lock held by "
            + (holders or "an unknown process (no /proc/locks entry)")
        )

    def lock_holders(self) -> list[int]:
        """The processes holding this database's write lock now (Linux /proc/locks: a WAL
        writer locks byte 120 of the -shm file); empty when unknown."""
        try:
            shm = os.stat(f"{self.path}-shm")
            with open("/proc/locks", encoding="ascii", errors="replace") as locks:
                lines = locks.read().splitlines()
        except OSError:
            return []
        pids: list[int] = []
        for line in lines:
            fields = line.split()
            if len(fields) != 8 or fields[3] != "WRITE":  # "->" lines are waiters
                continue
            try:
                inode = int(fields[5].rsplit(":", 1)[1])
                start = int(fields[6])
                end = int(fields[7]) if fields[7] != "EOF" else _WAL_WRITE_LOCK
                pid = int(fields[4])
            except (IndexError, ValueError):
                continue
            if inode == shm.st_ino and start <= _WAL_WRITE_LOCK <= end and pid not in pids:
                pids.append(pid)
        return pids

    # -- schema -------------------------------------------------------------------------------

    def _migrate(self) -> None:
        """Apply missing migrations. A current schema is only read (no write lock: a reader
        never waits for a writer); otherwise the version is read again under the lock."""
        conn = self.connection()
        try:
            version = self._when_free(lambda: schema_of(conn, self.path), "read")
        except _OPEN_FAILURES as exc:
            raise StorageError(f"cannot read {self.path}: {_reason(exc)}") from exc
        if version == len(self._migrations):
            return
        with self.transaction():
            version = schema_of(conn, self.path)
            if version > len(self._migrations):
                raise ConfigError(
                    f"{self.path} has schema {version}; this troth knows {len(self._migrations)}"
                )
            for number in range(version, len(self._migrations)):
                migration = self._migrations[number]
                if callable(migration):
                    migration(conn)
                    conn.execute(f"PRAGMA user_version = {number + 1}")
                    continue
                for statement in migration.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number + 1}")


class _Transaction(AbstractContextManager[None]):
    """`SqliteDatabase.transaction()`: a class, not a generator in a `contextmanager`, for the
    paths that open one per request (an issued lease; review 50m: ~1.5 us of
    secrets.token.issue's ~105 us). Entered in a transaction of this thread, it only counts
    the depth; the outermost one begins, commits or rolls back, then runs the callbacks
    `after_commit` gathered: every one, the first failure raised after the last, the write
    standing whatever one of them does (review 34c, commit 1); a rollback drops them."""

    __slots__ = ("_conn", "_db")

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db
        self._conn: sqlite3.Connection | None = None  # set when this one is the outermost

    def __enter__(self) -> None:
        db = self._db
        conn = db.connection()
        local = db._local
        if local.depth:
            local.depth += 1
            return
        local.depth = 1
        local.after = []
        local.version = None  # `data_version` asks SQLite again in each transaction
        try:
            db._begin(conn)
        except BaseException:
            local.depth = 0
            local.after = []
            raise
        self._conn = conn

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        local = self._db._local
        conn = self._conn
        if conn is None:  # an inner one: the outermost ends the transaction
            local.depth -= 1
            return
        try:
            if kind is not None:
                _rollback(conn)
                return  # the failure is raised on; the callbacks are dropped
            self._db._commit(conn)
            after = local.after
        finally:
            local.depth = 0
            local.after = []
        failure: BaseException | None = None
        for callback in after:
            try:
                callback()
            except BaseException as exc:  # raised below, once all have run
                failure = failure or exc
        if failure is not None:
            raise failure


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back the transaction a failure ends, if SQLite has not: a full disk, an I/O error
    or a damaged page (SQLITE_FULL, SQLITE_IOERR, SQLITE_CORRUPT) may roll it back itself, and
    a ROLLBACK then raised "cannot rollback - no transaction is active" in place of the
    failure (review 44d, node home 3)."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):  # the failure being raised says more
            conn.execute("ROLLBACK")


def _reason(exc: Exception) -> str:
    """Why an open failed: SQLite's message, or (its message not UTF-8) that it is damaged."""
    if isinstance(exc, UnicodeDecodeError):
        return "it is damaged (SQLite's message about it is not even text)"
    return str(exc)


def _busy_timeout() -> float:
    text = os.environ.get(BUSY_TIMEOUT_ENV)
    if not text:
        return BUSY_TIMEOUT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 86_400:
        raise ConfigError(f"{BUSY_TIMEOUT_ENV} must be seconds between 0 and 86400, not {text!r}")
    return seconds


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return bool(code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED))
    return "locked" in str(exc) or "busy" in str(exc)


def _describe_process(pid: int) -> str:
    """`pid 1234 (troth identity create --count 20000)`, from /proc when it can be read."""
    if pid == os.getpid():
        return f"pid {pid} (this process)"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            words = file.read(4096).split(b"\0")
    except OSError:
        return f"pid {pid}"
    command = " ".join(w.decode(errors="replace") for w in words if w)
    return f"pid {pid} ({command[:160]})" if command else f"pid {pid}"
