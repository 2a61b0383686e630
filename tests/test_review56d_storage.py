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
from collections.abc import Iterator
from pathlib import Path

import pytest

from troth.errors import StorageError
from troth.storage import SqliteDatabase


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
    assert _rows(db) == []  # all or nothing: it was `[b"execute", b"run", b"run_rows"]`


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
