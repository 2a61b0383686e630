"""A node's database copied and put back, as an operator's backup and restore would (review 50g:
a stolen or restored backup replaying old-but-genuine state)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from troth.authority import Authority
from troth.storage import HoldTime, SqliteDatabase
from troth.storage.planted import planted
from troth.storage.rollback import Restored, guard_path, restored_rows
from troth.storage.sqlite_authority import SqliteAuthorityStore


def node_db(home: Path, name: str) -> Path:
    """Node `name`'s database under the troth home `home`."""
    return home / "nodes" / name / "node.db"


def copy_db(path: Path, to: Path) -> None:
    """A consistent copy of the SQLite database at `path` (SQLite's online backup)."""
    source, copy = sqlite3.connect(path), sqlite3.connect(to)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()


def restore_db(path: Path, copy: Path) -> None:
    """Put `copy` back as the database at `path` (its write-ahead log and index gone)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copy(copy, path)


def thief_copy(path: Path, copy: Path) -> None:
    """Put `copy` back at `path` as a thief's machine holds it: node.db alone, no rollback guard
    beside it (which would now hold its identities: review 57i, restore 1)."""
    restore_db(path, copy)
    guard_path(path).unlink(missing_ok=True)


def restores_found(path: Path) -> list[Restored]:
    """The restores node.db at `path` recorded (`restored_rows`), the database closed after."""
    db = SqliteDatabase(path)
    try:
        return restored_rows(db)
    finally:
        db.close()


def planted_at(path: Path) -> list[str]:
    """What node.db at `path` holds that troth does not make (`planted`), closed after."""
    db = SqliteDatabase(path)
    try:
        return planted(db)
    finally:
        db.close()


def schema_malformed(
    path: Path, made: tuple[str, ...], *edits: tuple[str, tuple[object, ...]]
) -> str:
    """The error SQLite gives reading the database at `path` made by `made`, its schema rows
    then edited by `edits` (`PRAGMA writable_schema`), or "" when it reads it."""
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in made:
        conn.execute(statement)
    conn.execute("PRAGMA writable_schema = ON")
    for statement, params in edits:
        conn.execute(statement, params)
    conn.close()
    conn = sqlite3.connect(path)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        conn.close()
    return ""


def forget_armed_scopes(path: Path) -> None:
    """node.db at `path` with no scope armed (no `rollback_counters` row), as a troth from
    before review 52c left it."""
    db = SqliteDatabase(path)
    try:
        db.execute("DELETE FROM rollback_counters")
    finally:
        db.close()


def feed_gone_back(authority: Authority, count: int) -> SqliteAuthorityStore:
    """`authority`'s revocation feed as an older copy of its store held it: its first `count`
    entries only (rows deleted under the running node, as a restore leaves them; reviews 63w2,
    64d, 64j, 64p, 64t); its store, for what the test reads next."""
    store = authority.store
    assert isinstance(store, SqliteAuthorityStore)
    with store.transaction():
        store._db.execute("DELETE FROM revocations WHERE seq >= ?", (count,))
    return store


def release_authority(home: Path, name: str) -> int | HoldTime | None:
    """Release the authority node `name` under `home` hosts from a restore's hold, as its
    operator does once what was revoked after the copy is revoked again (`troth authority
    release-restored`; review 65o, feed 2); when it was held (`HoldTime.DAMAGED`: node.db held
    that time damaged), or None."""
    from troth.node import open_node

    with open_node(name, home=home) as node:
        return node.authority().release_restored()
