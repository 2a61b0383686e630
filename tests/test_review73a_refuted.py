"""Review 73a, planted3: attacks on a restore's checks of a copy's schema that did not work
(tests/test_review73a_planted3.py has the one that did)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.backups import restores_found
from tests.test_review72b_release import edit
from tests.test_review72v_planted import _A, _B, policy_copy_restored
from tests.test_review73a_planted3 import edited_node_db
from troth.errors import StorageError
from troth.gates import SqliteBundleTable
from troth.storage import SqliteDatabase
from troth.storage.planted import planted
from troth.storage.sqlite_schema import NODE_MIGRATIONS


def _held_back(path: Path) -> frozenset[bytes]:
    """The policy restore of node.db at `path` found (once), what it holds back."""
    db = SqliteDatabase(path)
    try:
        table = SqliteBundleTable(db, now=3)
        assert table.restored is not None
        return table.held_back()
    finally:
        db.close()


def test_an_index_and_planner_statistics_change_no_restore_write(tmp_path: Path) -> None:
    """73a refuted: a copy holding a partial expression index (not UNIQUE) on
    `gates_policy_held_back` and `sqlite_stat1` rows planted to steer the planner to it: an
    index that is not UNIQUE changes no row a statement writes or reads, only how it is found;
    the restore is found and holds back both bundles."""
    path = policy_copy_restored(
        tmp_path,
        ("CREATE INDEX steer ON gates_policy_held_back (length(authority)) WHERE authority", ()),
        ("ANALYZE", ()),
        ("DELETE FROM sqlite_stat1", ()),
        ("INSERT INTO sqlite_stat1 VALUES ('gates_policy_held_back', 'steer', '1000000 1')", ()),
        ("INSERT INTO sqlite_stat1 VALUES ('gates_policy_bundles', NULL, '1')", ()),
        ("PRAGMA application_id = 7", ()),
    )
    assert _held_back(path) == {_A, _B}


def test_a_check_on_the_held_back_fails_the_policy_restore_closed(tmp_path: Path) -> None:
    """73a refuted: a copy holding `gates_policy_held_back` made again with a CHECK refusing
    B's key (a table `check_made` does not compare: a CHECK makes a write fail, never skips
    it): the restore's transaction fails (StorageError), nothing recorded, found again at
    each open; made again as troth makes it, both are held back."""
    remade = (
        "CREATE TABLE held (authority BLOB PRIMARY KEY CHECK (authority <> x'"
        + _B.hex()
        + "')) WITHOUT ROWID"
    )
    path = policy_copy_restored(
        tmp_path,
        (remade, ()),
        ("DROP TABLE gates_policy_held_back", ()),
        ("ALTER TABLE held RENAME TO gates_policy_held_back", ()),
    )
    for _ in range(2):
        db = SqliteDatabase(path)
        with pytest.raises(StorageError, match="CHECK"):
            SqliteBundleTable(db, now=3)
        db.close()
    assert restores_found(path) == []
    edit(path, ("DROP TABLE gates_policy_held_back", ()))
    assert _held_back(path) == {_A, _B}


def test_a_definition_edited_in_sqlite_master_is_what_sqlite_applies(tmp_path: Path) -> None:
    """73a refuted: a table's text in `sqlite_master` edited after it was made (`PRAGMA
    writable_schema`), `ON CONFLICT IGNORE` added to a NOT NULL: SQLite parses that text again
    when the file is opened and applies it (a NULL is ignored, not refused), and `planted`
    reads that same text, so it is found."""
    path = edited_node_db(
        tmp_path,
        "PRAGMA writable_schema = ON",
        "UPDATE sqlite_master SET sql = replace(sql, 'uses_left INTEGER NOT NULL', "
        "'uses_left INTEGER NOT NULL ON CONFLICT IGNORE') WHERE name = 'tickets'",
    )
    conn = sqlite3.connect(path)
    try:
        conn.execute(
            "INSERT INTO tickets (code_hash, attributes, uses_left, expires_at, created_by, "
            "created_at) VALUES (x'01', x'', NULL, 0, x'', 0)"
        )
        assert conn.execute("SELECT count(*) FROM tickets").fetchone() == (0,)
    finally:
        conn.close()
    db = SqliteDatabase(path)
    try:
        assert planted(db) == ["table 'tickets' (a conflict clause)"]
    finally:
        db.close()


@pytest.mark.parametrize("first", [1, len(NODE_MIGRATIONS) // 2])
def test_a_node_db_an_older_troth_made_holds_nothing_planted(tmp_path: Path, first: int) -> None:
    """73a refuted (a false positive looked for): a node.db an older troth made (its first
    `first` migrations: the migrations are only ever appended, and each UNIQUE index troth
    makes has kept its text since it was first written), migrated by this troth: its UNIQUE
    indexes are troth's word for word, nothing is refused."""
    path = tmp_path / "node.db"
    SqliteDatabase(path, migrations=NODE_MIGRATIONS[:first]).close()
    db = SqliteDatabase(path)
    try:
        assert planted(db) == []
    finally:
        db.close()


def test_troths_unique_indexes_are_judged_by_what_they_keep_unique(tmp_path: Path) -> None:
    """73a refuted (a false positive looked for): `identities` renamed and renamed back (72v
    planted 1's remedy: SQLite writes the table's name in `identities_name`'s text again,
    quoted) and a second index keeping the same unique as troth's `revocations_once` keep
    nothing else unique: nothing is refused."""
    path = edited_node_db(
        tmp_path,
        "ALTER TABLE identities RENAME TO kept",
        "ALTER TABLE kept RENAME TO identities",
        "CREATE UNIQUE INDEX twice ON revocations (kind, target) WHERE kind < 3",
    )
    db = SqliteDatabase(path)
    try:
        assert planted(db) == []
    finally:
        db.close()
