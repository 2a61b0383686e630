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
from troth.storage.row_types import schema_of
from troth.storage.sqlite_schema import NODE_MIGRATIONS, Migration

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

_MIGRATIONS: Final = NODE_MIGRATIONS
"""node.db's schema (troth.storage.sqlite_schema): the migrations `SqliteDatabase` applies."""


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
