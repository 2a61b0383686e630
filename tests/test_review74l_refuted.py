"""Review 74l, refuted: a third review of the comparison of the tables troth makes with a
restored copy's (73h, 74c, 74i; docs/storage.md, "Rollback guard"): each attack below is
refused, fails closed, or changes nothing troth's writes keep (tests/test_review74l_planted8.py
has the ones that did)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.backups import planted_at
from tests.test_review73a_planted3 import edited_node_db
from troth.errors import ConfigError, StorageError
from troth.secrets.store import SecretRecord, SqliteSecretStore
from troth.storage import SqliteDatabase
from troth.storage.lazy_tables import EARLIER
from troth.storage.sqlite_credentials import SqliteCredentialStore
from troth.storage.sqlite_stores import SqliteIdentityStore

_STORE = (
    "CREATE TABLE secret_store (name TEXT PRIMARY KEY{}, engine TEXT NOT NULL, "
    "config TEXT NOT NULL, sealed BLOB NOT NULL, updated_at INTEGER NOT NULL{})"
)
_DUE = (
    "DROP TABLE feed_syncs_due",
    "CREATE TABLE feed_syncs_due (id {} PRIMARY KEY{}, authority BLOB NOT NULL, "
    "address TEXT NOT NULL, marked_at INTEGER NOT NULL)",
)


@pytest.mark.parametrize(
    ("edits", "found"),
    [
        (  # a conflict clause inside a column's constraint: a plain INSERT would skip a row
            (_STORE.format(" NOT NULL ON CONFLICT IGNORE", ""),),
            ["table 'secret_store' (a conflict clause)"],
        ),
        (  # UNIQUE ON CONFLICT REPLACE in a table's constraint
            (_STORE.format("", ", UNIQUE (engine) ON CONFLICT REPLACE"),),
            [
                "table 'secret_store' (a conflict clause)",
                "table 'secret_store' (a UNIQUE or PRIMARY KEY not troth's)",
            ],
        ),
        (  # INT PRIMARY KEY: not the rowid's alias (a NULL id is kept, not numbered)
            (_DUE[0], _DUE[1].format("INT", "")),
            ["table 'feed_syncs_due' (a UNIQUE or PRIMARY KEY not troth's)"],
        ),
        (  # INTEGER PRIMARY KEY DESC: not the rowid's alias either (SQLite's quirk)
            (_DUE[0], _DUE[1].format("INTEGER", " DESC")),
            ["table 'feed_syncs_due' (a UNIQUE or PRIMARY KEY not troth's)"],
        ),
        (  # AUTOINCREMENT added where troth keys by the rowid alone: refused too
            (
                "CREATE TABLE identity_restore_rotated (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "raised_at INTEGER NOT NULL)",
            ),
            ["table 'identity_restore_rotated' (a UNIQUE or PRIMARY KEY not troth's)"],
        ),
        (  # a virtual table named as troth's one keyless table: its columns typed otherwise
            ("CREATE VIRTUAL TABLE identity_restore_rotated USING fts4(raised_at INTEGER)",),
            ["table 'identity_restore_rotated' (a column's type not troth's)"],
        ),
        (  # a UNIQUE index on an expression of troth's columns
            ("CREATE UNIQUE INDEX one ON identities (lower(name))",),
            ["index 'one'"],
        ),
        (  # a column after troth's named as SQLite names the rowid (ORDER BY rowid reads it)
            (_STORE.format("", ", rowid INTEGER"),),
            ["table 'secret_store' (its columns not in troth's order)"],
        ),
        (  # a column after troth's otherwise: no write by position fits, one by name
            # leaves it NULL (a NOT NULL, CHECK, key or generated one is refused apart)
            (_STORE.format("", ", extra BLOB"),),
            [],
        ),
        (  # a column troth makes missing in the middle: a write names it, or counts it
            (_STORE.format("", "").replace(", config TEXT NOT NULL", ""),),
            ["table 'secret_store' (its columns not in troth's order)"],
        ),
    ],
)
def test_a_table_made_otherwise_is_refused_or_keeps_what_troths_does(
    tmp_path: Path, edits: tuple[str, ...], found: list[str]
) -> None:
    """74l refuted: conflict clauses inside constraints, a rowid key spelled so it is no
    alias, AUTOINCREMENT added, a virtual table, a UNIQUE expression index, extra columns."""
    assert planted_at(edited_node_db(tmp_path, *edits)) == found


def test_an_extra_column_fails_a_write_by_position(tmp_path: Path) -> None:
    """74l refuted: `secret_store` with a column after troth's (passed): troth's `INSERT OR
    REPLACE INTO secret_store VALUES (?, ?, ?, ?, ?)` fails on the count, nothing written."""
    db = SqliteDatabase(edited_node_db(tmp_path, _STORE.format("", ", extra BLOB")))
    try:
        with pytest.raises(StorageError, match="6 columns but 5 values"):
            SqliteSecretStore(db).put_secret(SecretRecord("a", "static", "{}", b"a", 1))
    finally:
        db.close()


def test_a_foreign_key_planted_fails_the_write_not_skips_it(tmp_path: Path) -> None:
    """74l refuted: `retired_keys` made with `handle REFERENCES` a table of the copy's own
    (no action: one is refused by its words), node.db's connections enforcing foreign keys:
    troth's `INSERT OR IGNORE` does not skip a row a foreign key refuses (SQLite applies no
    conflict clause to one), the write fails, nothing lost silently."""
    db = SqliteDatabase(
        edited_node_db(
            tmp_path,
            "CREATE TABLE planted (handle TEXT PRIMARY KEY)",
            "DROP TABLE retired_keys",
            "CREATE TABLE retired_keys (handle TEXT PRIMARY KEY REFERENCES planted (handle))",
        )
    )
    try:
        with pytest.raises(StorageError, match="FOREIGN KEY"):
            SqliteIdentityStore(db).add_retired_keys(["vault-a"])
    finally:
        db.close()


def test_a_sequence_planted_at_its_end_fails_the_next_mark(tmp_path: Path) -> None:
    """74l refuted: `sqlite_sequence` (SQLite's, for troth's AUTOINCREMENT key) set to the
    largest rowid: the next sync mark fails (SQLite gives no number past it), never one given
    again."""
    path = edited_node_db(
        tmp_path,
        "DELETE FROM sqlite_sequence WHERE name = 'feed_syncs_due'",
        "INSERT INTO sqlite_sequence (name, seq) VALUES ('feed_syncs_due', 9223372036854775807)",
    )
    assert planted_at(path) == []
    db = SqliteDatabase(path)
    try:
        with pytest.raises(StorageError):
            SqliteCredentialStore(db).mark_sync_due(b"\x0a" * 32, "", 1)
    finally:
        db.close()


@pytest.mark.parametrize("version", [11, 10_000])
def test_a_schema_version_planted_fails_or_migrates_to_troths(tmp_path: Path, version: int) -> None:
    """74l refuted: `PRAGMA user_version` raised past this troth's fails to open (ConfigError);
    lowered, the migrations after it run again (those before the 12th fail on a table or
    column already there) and leave troth's schema: what they write is what the copy could
    hold itself. `application_id` and `sqlite_stat1`: 73a refuted."""
    path = edited_node_db(tmp_path, f"PRAGMA user_version = {version}")
    if version > 100:
        with pytest.raises(ConfigError, match="schema"):
            planted_at(path)
    else:
        assert planted_at(path) == []


_FIRST_LEASES = (
    "CREATE TABLE secret_leases (handle BLOB PRIMARY KEY, identity BLOB NOT NULL, "
    "secret TEXT NOT NULL, engine TEXT NOT NULL, scope TEXT NOT NULL, "
    "chain_hash BLOB NOT NULL, authority BLOB NOT NULL, issued_at INTEGER NOT NULL, "
    "expires_at INTEGER NOT NULL, ttl INTEGER NOT NULL, max_ttl INTEGER NOT NULL, "
    "cap_at INTEGER NOT NULL, state INTEGER NOT NULL, state_at INTEGER NOT NULL, "
    "end_reason INTEGER, engine_ref TEXT, attempts INTEGER NOT NULL DEFAULT 0)"
)


@pytest.mark.parametrize(
    "edits",
    [
        (_FIRST_LEASES,),
        (  # the second layout (no account), given its later columns at the end by ALTER
            EARLIER[1],
            "ALTER TABLE secret_leases ADD COLUMN retry_at INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE secret_leases ADD COLUMN request BLOB",
            "ALTER TABLE secret_leases ADD COLUMN request_attempt INTEGER",
        ),
    ],
)
def test_the_lease_layouts_of_earlier_troths_pass(tmp_path: Path, edits: tuple[str, ...]) -> None:
    """74l refuted, no false refusal: the columns' order is compared with every shape troth
    made (the git history of each statement made lazily: only `secret_leases` had a column
    put in the middle, `account`); its two earlier layouts, retired when the broker opens,
    hold nothing planted."""
    assert planted_at(edited_node_db(tmp_path, *edits)) == []
