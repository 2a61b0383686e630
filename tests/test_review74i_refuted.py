"""Review 74i, refuted: a second review of 74c's comparison of the tables troth makes lazily
(docs/storage.md, "Rollback guard"): each attack below is refused, changes nothing troth's
writes keep, or is no false refusal (tests/test_review74i_planted7.py has the ones that did)."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import troth
import troth.trace
from tests.support.backups import planted_at
from tests.test_review73a_planted3 import edited_node_db
from troth.node import rotation_revoke
from troth.secrets import store_schema
from troth.secrets.store import SqliteSecretStore
from troth.storage import SqliteDatabase, planted
from troth.storage.lazy_tables import made_lazily
from troth.storage.sqlite_schema import NODE_MIGRATIONS
from troth.storage.sqlite_stores import SqliteIdentityStore

_LEASES = next(s for s in store_schema._SCHEMA if "secret_leases (" in s)
_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table'"
_ADDED = ",\n        retry_at INTEGER NOT NULL DEFAULT 0, request BLOB, request_attempt INTEGER"


@pytest.fixture
def reference_again() -> Any:
    """`planted`'s reference built again in the test (and after it: nothing patched kept)."""
    planted._migrated.cache_clear()
    yield
    planted._migrated.cache_clear()


@pytest.mark.parametrize(
    ("edits", "found"),
    [
        (  # STRICT added to a table troth makes: the affinity of each column as troth's, and
            # a value of another type is refused (IntegrityError), never skipped by OR IGNORE
            (
                "DROP TABLE retired_keys",
                "CREATE TABLE retired_keys (handle TEXT PRIMARY KEY) STRICT, WITHOUT ROWID",
            ),
            [],
        ),
        (  # STRICT dropped: troth writes each column's own type (nothing else changes)
            (
                "CREATE TABLE policy_sign_cleared (authority BLOB PRIMARY KEY, "
                "restore TEXT NOT NULL)",
            ),
            [],
        ),
        (  # a type spelled otherwise with troth's affinity: stored and compared alike
            (
                "CREATE TABLE secret_store (name VARCHAR(64) PRIMARY KEY, engine CLOB NOT NULL, "
                "config TEXT NOT NULL, sealed BLOB NOT NULL, updated_at BIGINT NOT NULL)",
            ),
            [],
        ),
        (  # a lazily made table in another case of its name: the same table to SQLite
            (
                "CREATE TABLE Trace_Outbox_Held (agent BLOB PRIMARY KEY, reason TEXT UNIQUE, "
                "detail TEXT NOT NULL, record TEXT, since INTEGER NOT NULL)",
            ),
            ["table 'Trace_Outbox_Held' (a UNIQUE or PRIMARY KEY not troth's)"],
        ),
    ],
)
def test_a_table_made_otherwise_is_refused_or_keeps_what_troths_does(
    tmp_path: Path, edits: tuple[str, ...], found: list[str]
) -> None:
    """74i refuted: STRICT added or dropped, a type spelled otherwise with troth's affinity, a
    lazily made table named in another case."""
    assert planted_at(edited_node_db(tmp_path, *edits)) == found


def test_a_retired_key_of_another_type_is_refused_not_skipped_in_a_strict_copy(
    tmp_path: Path,
) -> None:
    """74i refuted: `retired_keys` made STRICT in a copy: troth's handles (text) are recorded,
    and a value of another type fails the write (SQLite's datatype error is no conflict
    `INSERT OR IGNORE` skips)."""
    path = edited_node_db(
        tmp_path,
        "DROP TABLE retired_keys",
        "CREATE TABLE retired_keys (handle TEXT PRIMARY KEY) STRICT, WITHOUT ROWID",
    )
    db = SqliteDatabase(path)
    try:
        store = SqliteIdentityStore(db)
        store.add_retired_keys(["vault-a", "vault-z"])
        assert store.retired_keys(10) == ["vault-a", "vault-z"]
        with pytest.raises(troth.errors.StorageError):
            db.execute("INSERT OR IGNORE INTO retired_keys VALUES (?)", (b"\x01",))
    finally:
        db.close()


def test_the_shapes_troth_altered_pass(tmp_path: Path) -> None:
    """74i refuted, no false refusal: `secret_leases` as made before retries backed off and
    lease requests (given `retry_at`, `request`, `request_attempt` by ALTER TABLE ADD COLUMN
    when the broker opens: its DEFAULT and NOT NULL written in the ALTER's words, at the end of
    the table's text), and `broker_revoke_due` made before `marked` (added alike), hold
    nothing planted."""
    old_leases = _LEASES.replace(_ADDED, "")
    assert old_leases != _LEASES
    old_due = rotation_revoke._CREATE.replace(", marked INTEGER NOT NULL DEFAULT -1", "")
    assert old_due != rotation_revoke._CREATE
    db = SqliteDatabase(edited_node_db(tmp_path, old_leases, old_due))
    try:
        SqliteSecretStore(db)
        rotation_revoke._with_marked(SimpleNamespace(db=db))  # type: ignore[arg-type]
        columns = {row[1] for row in db.fetch_all("PRAGMA table_info(secret_leases)")}
        assert {"retry_at", "request_attempt"} <= columns
        assert planted.planted(db) == []
    finally:
        db.close()


def test_a_registered_module_that_does_not_import_fails_the_restore_not_skips_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference_again: None
) -> None:
    """74i refuted: a module `made_lazily` names that fails to import (a broken install)
    makes the comparison raise, so the restore found is not recorded (its transaction
    undone): never a table left uncompared."""
    monkeypatch.delattr(troth.trace, "outbox_tickets", raising=False)
    monkeypatch.setitem(sys.modules, "troth.trace.outbox_tickets", None)
    path = edited_node_db(tmp_path)
    with pytest.raises(ImportError):
        planted_at(path)


def test_a_start_with_no_restore_never_builds_the_reference(
    monkeypatch: pytest.MonkeyPatch, reference_again: None
) -> None:
    """74i refuted (cost): importing the modules `made_lazily` reads (cedarpy's among them,
    ~0.6 s) is paid when a restore is found, once a process; a node opened and used with no
    restore never asks for them."""

    def refused() -> tuple[str, ...]:
        raise AssertionError("made_lazily asked with no restore found")

    monkeypatch.setattr(planted, "made_lazily", refused)
    with troth.Node.open("a") as node:
        node.create_authority().ticket({"team.name": "y"})
    assert planted._migrated.cache_info().currsize == 0


def test_no_table_is_made_both_lazily_and_by_a_migration() -> None:
    """74i refuted: a table registered in `made_lazily` and made by a migration too would
    pass in the shape of either (`_migrated` merges them); none is."""
    conn = sqlite3.connect(":memory:")
    try:
        for migration in NODE_MIGRATIONS:
            if callable(migration):
                migration(conn)
            else:
                conn.executescript(migration)
        migrated = {str(row[0]).lower() for row in conn.execute(_TABLES)}
    finally:
        conn.close()
    lazily = {
        planted._made_table(s)[0].lower() for s in made_lazily() if "CREATE TABLE" in s.upper()
    }
    assert "trace_outbox_held" in lazily
    assert "identities" in migrated
    assert migrated & lazily == set()
