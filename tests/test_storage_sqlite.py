"""SQLite storage: units of work, conditional writes, schema versions, file modes."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from troth.errors import ConfigError, ConflictError, StorageError
from troth.storage import SqliteDatabase, SqliteIdentityStore

ID = b"\x01" * 32


def test_transaction_commits_or_rolls_back(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "t.db")
    store = SqliteIdentityStore(db)
    with pytest.raises(RuntimeError, match=r"crash inside the unit of work"), db.transaction():
        store.insert_history(ID, b"h", 1, 0)
        raise RuntimeError("crash inside the unit of work")
    assert store.get_history(ID) is None
    with db.transaction():
        store.insert_history(ID, b"h", 1, 0)
        with db.transaction():  # re-entrant: joins the outer transaction
            store.update_history(ID, b"h2", 2, 1, 0)
    assert store.get_history(ID) == (b"h2", 2)
    db.close()


def test_inner_failure_rolls_back_everything(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "t.db")
    store = SqliteIdentityStore(db)
    with (
        pytest.raises(ConflictError, match=r"UNIQUE constraint failed: identities\.identifier"),
        db.transaction(),
    ):
        store.insert_history(ID, b"h", 1, 0)
        with db.transaction():
            store.insert_history(ID, b"again", 1, 0)
    assert store.get_history(ID) is None
    db.close()


def test_compare_and_swap(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "t.db")
    store = SqliteIdentityStore(db)
    store.insert_history(ID, b"h", 1, 0)
    with pytest.raises(ConflictError, match=r"UNIQUE constraint failed: identities\.identifier"):
        store.insert_history(ID, b"h", 1, 0)
    with pytest.raises(ConflictError, match=r"the stored history changed meanwhile"):
        store.update_history(ID, b"h3", 3, 2, 0)  # the stored copy has 1 change, not 2
    store.update_history(ID, b"h2", 2, 1, 0)
    assert store.get_history(ID) == (b"h2", 2)
    db.close()


def test_committed_data_is_visible_to_another_connection(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "t.db")
    SqliteIdentityStore(db).insert_history(ID, b"h", 1, 0)
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(SqliteIdentityStore(db).get_history(ID)))
    thread.start()
    thread.join()
    assert seen == [(b"h", 1)]
    other = SqliteDatabase(tmp_path / "t.db")  # a second process would see the same
    assert SqliteIdentityStore(other).get_history(ID) == (b"h", 1)
    db.close()
    other.close()


def test_durability_settings(tmp_path: Path) -> None:
    full = SqliteDatabase(tmp_path / "f.db", durability="full")
    assert full.connection().execute("PRAGMA synchronous").fetchone()[0] == 2
    assert full.connection().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    normal = SqliteDatabase(tmp_path / "n.db")
    assert normal.connection().execute("PRAGMA synchronous").fetchone()[0] == 1
    with pytest.raises(ConfigError, match=r"unknown durability 'none' \(normal or full\)"):
        SqliteDatabase(tmp_path / "x.db", durability="none")  # type: ignore[arg-type]
    full.close()
    normal.close()


def test_schema_version_and_newer_schema_refused(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "t.db")
    version = db.fetch_one("PRAGMA user_version")[0]
    assert version >= 1
    db.execute(f"PRAGMA user_version = {version + 1}")
    db.close()
    with pytest.raises(ConfigError, match="schema"):
        SqliteDatabase(tmp_path / "t.db")
    SqliteDatabase(tmp_path / "u.db").close()
    SqliteDatabase(tmp_path / "u.db").close()  # reopening runs no migration twice


def test_files_are_private(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "t.db")
    SqliteIdentityStore(db).insert_history(ID, b"h", 1, 0)
    for name in ("t.db", "t.db-wal", "t.db-shm"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600, name
    db.close()


def test_unopenable_path(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot create"):
        SqliteDatabase(tmp_path / "missing-dir" / "t.db")
