"""Review 62e, storage and the rollback guard: attacks tried that did not work (each fails if
its defence breaks). docs/storage.md, "Restoring a backup", "Rollback guard", "Schema",
"Durability"."""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import troth
from tests.conftest import NOW
from tests.support.backups import copy_db, node_db, restore_db, restores_found
from tests.support.killed import killed_after
from troth.errors import AuthorityError, ConfigError, IdentityError, StorageError
from troth.faults import CRASH_EXIT_CODE
from troth.node import init_node, open_node
from troth.storage import SqliteDatabase
from troth.storage.rollback import RollbackGuard, guard_path, read_guard


def _spoil(guard: Path, how: str, older: Path) -> None:
    """The guard beside a restored node.db as an attacker leaves it: `older` is the guard as
    it was when the copy was taken (a valid guard matching the copy)."""
    guard.unlink()
    if how == "truncated":
        guard.write_bytes(older.read_bytes()[:100])
    elif how == "older-link":
        guard.symlink_to(older)
    elif how == "directory":
        guard.mkdir()
    elif how == "fifo":
        os.mkfifo(guard)
    elif how == "huge":  # the copy's guard, then a GiB of holes: read only up to its size
        shutil.copy(older, guard)
        os.truncate(guard, 1 << 30)


def _redeemed_then_restored(home: Path, tmp_path: Path) -> tuple[str, Path]:
    """Node `acme`'s authority made a ticket; node.db copied (its guard as it was then kept
    at `tmp_path / "older.guard"`), the ticket redeemed by node `a`, the copy put back (its
    guard left as the redemption raised it): the ticket, and node.db's path."""
    with troth.Node.open("acme") as acme:
        ticket = acme.create_authority().ticket({"team.name": "x"})
    path = node_db(home, "acme")
    copy = tmp_path / "acme.db"
    copy_db(path, copy)
    shutil.copy(guard_path(path), tmp_path / "older.guard")
    with troth.Node.open("a") as a:
        a.enroll(ticket)
    restore_db(path, copy)
    return ticket, path


@pytest.mark.parametrize("how", ["older-link", "directory", "huge"])
def test_a_redeemed_ticket_stays_redeemed_whatever_the_guard_beside_the_copy(
    troth_home: Path, tmp_path: Path, how: str
) -> None:
    """node.db put back from before a ticket's redemption, its guard a link to the guard as
    it was at the copy, a directory, that guard grown to a GiB (deleted: review 56d's tests):
    the ticket is not redeemed again (a directory, which no guard can be written over,
    refuses the authority)."""
    ticket, path = _redeemed_then_restored(troth_home, tmp_path)
    _spoil(guard_path(path), how, tmp_path / "older.guard")
    with troth.Node.open("b") as b, pytest.raises((AuthorityError, StorageError)):
        b.enroll(ticket)
    assert [(r.scope, r.counter) for r in restores_found(path)] == [("authority", 0)]


@pytest.mark.parametrize("how", ["truncated", "fifo"])
def test_a_copy_from_before_a_rotation_never_signs_whatever_the_guard(
    troth_home: Path, how: str
) -> None:
    """node.db put back from before a rotation (after a first one, counted), its guard cut
    short, a FIFO: the identity's retired key signs nothing."""
    init_node("laptop")
    path = node_db(troth_home, "laptop")
    with open_node("laptop") as node:
        node.identities.create(now=NOW, name="courier")
        node.identities.rotate("courier", now=NOW + 1)
    copy, older = troth_home / "copy.db", troth_home / "older.guard"
    copy_db(path, copy)
    shutil.copy(guard_path(path), older)
    with open_node("laptop") as node:
        node.identities.rotate("courier", now=NOW + 10, compromised=True)
    restore_db(path, copy)
    _spoil(guard_path(path), how, older)
    with open_node("laptop") as node, pytest.raises((IdentityError, StorageError)):
        node.identities.signer("courier", now=NOW + 20).sign(b"m")
    assert [(r.scope, r.counter) for r in restores_found(path)] == [("identity", 1)]


def test_a_guard_that_cannot_be_read_opens_nothing(
    troth_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A guard made unreadable (mode 000: shown with a stub, the tests run as root) beside a
    copy from before a redemption: the authority is refused (it cannot judge), the ticket not
    redeemed again."""
    ticket, path = _redeemed_then_restored(troth_home, tmp_path)
    guard, real_open = os.fspath(guard_path(path)), os.open

    def refused(file: object, flags: int, *args: object, **kwargs: object) -> int:
        if os.fspath(file) == guard:  # type: ignore[call-overload]
            raise PermissionError(13, "Permission denied", guard)
        return real_open(file, flags, *args, **kwargs)  # type: ignore[arg-type]

    with monkeypatch.context() as stubbed:  # (never `undo`: TROTH_HOME is set by it too)
        stubbed.setattr(os, "open", refused)
        with troth.Node.open("b") as b, pytest.raises(StorageError, match="cannot read"):
            b.enroll(ticket)
    with troth.Node.open("b") as b, pytest.raises(AuthorityError):
        b.enroll(ticket)


def _tables(path: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
        return [(str(n), str(s)) for n, s in rows]
    finally:
        conn.close()


def _user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def test_a_newer_schema_is_refused_typed_and_left_as_it_was(tmp_path: Path) -> None:
    """node.db of a newer troth (a downgrade): ConfigError naming both versions, nothing of it
    changed (its version, its tables)."""
    path = tmp_path / "node.db"
    SqliteDatabase(path).close()
    conn = sqlite3.connect(path)
    newer = _user_version(path) + 1
    conn.execute(f"PRAGMA user_version = {newer}")
    conn.execute("CREATE TABLE from_a_newer_troth (x)")
    conn.close()
    before = _tables(path)
    with pytest.raises(ConfigError, match=f"has schema {newer}; this troth knows {newer - 1}"):
        SqliteDatabase(path)
    assert (_user_version(path), _tables(path)) == (newer, before)


def _migrate(path: Path) -> Callable[[], None]:
    return lambda: SqliteDatabase(path).close()


@pytest.mark.parametrize("statement", [6, 25, 60])
def test_a_migration_killed_half_way_is_all_undone_then_done(
    tmp_path: Path, statement: int
) -> None:
    """A process killed (no cleanup) at a statement in the middle of node.db's migrations
    leaves the schema it found; the next open makes the whole schema (the migrations are one
    transaction, the version with them)."""
    fresh = tmp_path / "fresh.db"
    SqliteDatabase(fresh).close()
    path = tmp_path / "node.db"
    conn = sqlite3.connect(path)  # a node.db of the first migrations only (an older troth)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    assert killed_after(statement, _migrate(path)) == CRASH_EXIT_CODE
    assert (_user_version(path), _tables(path)) == (0, [])
    assert killed_after(0, _migrate(path)) == 0
    assert _tables(path) == _tables(fresh)
    assert _user_version(path) == _user_version(fresh)


@pytest.mark.parametrize("durability", ["normal", "full"])
def test_every_connection_is_wal_at_its_durability(tmp_path: Path, durability: str) -> None:
    """Every connection node.db gives (each thread's, a dedicated one) journals in WAL at the
    node's sync level, on a file SQLite first made with a rollback journal too."""
    path = tmp_path / "node.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()  # delete mode
    db = SqliteDatabase(path, durability)  # type: ignore[arg-type]
    try:
        conns = [db.connection(), db.dedicated()]
        thread = threading.Thread(target=lambda: conns.append(db.connection()))
        thread.start()
        thread.join()
        want = ("wal", 2 if durability == "full" else 1)
        for conn in conns:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            assert (mode, conn.execute("PRAGMA synchronous").fetchone()[0]) == want
    finally:
        db.close()


def test_a_writer_killed_in_its_turn_at_the_guard_holds_nothing(tmp_path: Path) -> None:
    """A process killed (SIGKILL) holding the guard's flock, its count committed and the guard
    not raised yet, or killed holding SQLite's write lock mid-transaction: the next writer
    waits for neither (a short busy limit), and the store reads current."""
    path = tmp_path / "node.db"
    db = SqliteDatabase(path, busy_timeout=0.5)
    guard = RollbackGuard(db, "authority")
    try:
        with db.transaction():
            guard.bump()

        def bump(then: Callable[[], None] = lambda: None, table: str = "t") -> None:
            child = SqliteDatabase(path, busy_timeout=0.5)
            with child.transaction():
                RollbackGuard(child, "authority").bump()
                child.execute(f"CREATE TABLE {table} (x)")
                then()

        point = "storage.rollback-guard.before-write"
        assert killed_after(0, bump, crash_at=point) == CRASH_EXIT_CODE
        assert (guard.counter(), read_guard(guard_path(path))) == (2, {"authority": 1})
        # killed inside BEGIN IMMEDIATE, the write lock held, nothing committed
        killed = lambda: bump(lambda: os._exit(CRASH_EXIT_CODE), "u")  # noqa: E731
        assert killed_after(0, killed) == CRASH_EXIT_CODE
        assert guard.check(NOW, lambda: 0) is None  # raised to 2, no wait for the lock
        with db.transaction():
            guard.bump()
        assert (guard.counter(), read_guard(guard_path(path))) == (3, {"authority": 3})
        names = {row[0] for row in db.fetch_all("SELECT name FROM sqlite_master")}
        assert "t" in names
        assert "u" not in names
    finally:
        db.close()
