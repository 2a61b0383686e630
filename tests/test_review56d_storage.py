"""Review 56d, storage 1: a statement that meets a full disk (SQLITE_FULL; an I/O error,
SQLITE_IOERR, and a damaged page, SQLITE_CORRUPT, alike) may make SQLite roll back the whole
transaction itself, not only the statement (sqlite.org/lang_transaction.html). Callers catch
a TrothError inside a transaction and go on (`IdentityService._retire_keys` deletes retired
keys best effort; a fork kept as evidence, `_keep_fork`; a batch's keys stored after a
failed insert, `end_batch`), and every statement after it then ran in autocommit mode: each
committed at once, outside the unit of work, and none rolled back when the transaction then
failed, while the writes before the failure were gone. The disk filling is simulated by
capping the database's pages (`max_page_count`), the same SQLITE_FULL a full disk gives
(review 44d, node home 3)."""

from __future__ import annotations

import contextlib
import errno
import os
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

import troth
from troth.authority import Ticket
from troth.errors import StorageError
from troth.storage import SqliteDatabase
from troth.storage.rollback import guard_path, read_guard, restored_rows


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqliteDatabase]:
    database = SqliteDatabase(tmp_path / "node.db")
    database.execute("CREATE TABLE t (x BLOB)")
    pages = database.fetch_one("PRAGMA page_count")[0]
    database.connection().execute(f"PRAGMA max_page_count = {pages + 2}")  # almost full
    yield database
    database.close()


def _rows(db: SqliteDatabase) -> list[bytes]:
    return [bytes(r[0]) for r in db.fetch_all("SELECT x FROM t ORDER BY x")]


def test_storage1_no_write_stands_from_a_transaction_sqlite_rolled_back(db: SqliteDatabase) -> None:
    with pytest.raises(StorageError), db.transaction():
        db.execute("INSERT INTO t VALUES (?)", (b"before",))
        with pytest.raises(StorageError, match="full"):
            db.execute("INSERT INTO t VALUES (?)", (b"x" * 100_000,))  # the disk fills
        for write in (db.execute, db.run, db.run_rows):  # callers going on, best effort
            with contextlib.suppress(StorageError):
                write("INSERT INTO t VALUES (?)", (write.__name__.encode(),))
        with contextlib.suppress(StorageError):
            db.execute_many("INSERT INTO t VALUES (?)", [(b"many",)])
    assert _rows(db) == []  # all or nothing: it was `[b"execute", b"many", b"run", ...]`


def test_storage1_a_transaction_sqlite_rolled_back_fails_the_next_statement(
    db: SqliteDatabase,
) -> None:
    """The statement after SQLite's rollback fails, saying so (it ran on its own, committed),
    and the database goes on: the next transaction commits."""
    with pytest.raises(StorageError, match="rolled back") as raised, db.transaction():
        with pytest.raises(StorageError):
            db.execute("INSERT INTO t VALUES (?)", (b"x" * 100_000,))
        db.fetch_all("SELECT x FROM t")
    assert str(db.path) in str(raised.value)
    with db.transaction():
        db.execute("INSERT INTO t VALUES (?)", (b"next",))
    assert _rows(db) == [b"next"]


def _disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rollback guard's writes (troth.storage.rollback's `os.write`, `os.pwrite`) meet a
    full disk (ENOSPC), as they do when node.db's file system fills."""

    def full(*_args: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    fake = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")})
    fake.write = fake.pwrite = full
    monkeypatch.setattr("troth.storage.rollback.os", fake)


@pytest.mark.parametrize("first", [True, False])
def test_storage2_a_full_disk_under_the_guard_is_a_storage_error_naming_it(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch, first: bool
) -> None:
    """Review 56d, storage 2: the rollback guard's file met a full disk (its first write, a
    ticket's; a later raise, a ticket voided) as a bare OSError, `[Errno 28] No space left on
    device`, naming no file: a daemon redeeming a ticket logged it as a bug and answered
    `internal error`. It is a StorageError naming the guard, as every other storage failure
    (review 44d, node home 2-3). A raise that failed after its write's commit leaves the store
    ahead of its guard (crash window 2): with room again, no restore is found and the guard
    is raised; a first write's failure rolls its transaction back."""
    with troth.Node.open("acme") as acme:
        authority = acme.create_authority()
        made = None if first else authority.ticket({"team.name": "x"})
        with monkeypatch.context() as patched, pytest.raises(StorageError) as raised:
            _disk_full(patched)
            if made is None:
                authority.ticket({"team.name": "x"})
            else:
                acme._stored.authority().void_ticket(Ticket.parse(made), now=int(time.time()))
        assert "node.db.guard: No space left" in str(raised.value)
    with troth.Node.open("acme") as acme:
        acme.authority()  # checked: no restore (none found would void the tickets)
        db = acme._stored.db
        assert restored_rows(db) == []
        row = db.fetch_one("SELECT counter FROM rollback_counters")
        guard = read_guard(guard_path(db.path))
        if first:  # the ticket's transaction rolled back: nothing made, nothing armed
            assert (row, guard) == (None, None)
            assert db.fetch_one("SELECT count(*) FROM tickets")[0] == 0
        else:  # the void committed, counted: the guard raised to it now
            assert (row[0], guard) == (1, {"authority": 1})
