"""Review 74l, planted8: what a restored copy of node.db can still change in a table troth
makes (74c planted6 and 74i planted7 compared keys, CHECKs, NOT NULL, defaults, affinity and
collation, each by its column's name): the columns' order, and a key's AUTOINCREMENT
(docs/storage.md, "Rollback guard")."""

from __future__ import annotations

from pathlib import Path

from tests.test_review73a_planted3 import edited_node_db
from troth.secrets.store import SecretRecord, SqliteSecretStore
from troth.storage import SqliteDatabase
from troth.storage.planted import planted
from troth.storage.sqlite_credentials import SqliteCredentialStore

_A = b"\x0a" * 32


def test_columns_reordered_do_not_take_a_secret_for_its_engine(tmp_path: Path) -> None:
    """74l planted8 1: a copy holding `secret_store` with troth's columns, types, keys and
    NOT NULLs, but `engine` before `name` (each compared by its name, so all passed): troth
    writes it `INSERT OR REPLACE INTO secret_store VALUES (?, ?, ?, ?, ?)`, by position, so
    each secret's engine went in the key column and its name in `engine`: secret `b` put
    beside `a`, both `static`, replaced `a`, and neither was found by its name. A table troth
    makes whose columns are not in troth's order (one of its shapes, or its start: a column
    troth adds later goes at the end) is refused."""
    path = edited_node_db(
        tmp_path,
        "CREATE TABLE secret_store (engine TEXT NOT NULL, name TEXT PRIMARY KEY, "
        "config TEXT NOT NULL, sealed BLOB NOT NULL, updated_at INTEGER NOT NULL)",
    )
    db = SqliteDatabase(path)
    try:
        store = SqliteSecretStore(db)
        store.put_secret(SecretRecord("a", "static", "{}", b"a", 1))
        store.put_secret(SecretRecord("b", "static", "{}", b"b", 2))
        assert store.get_config("a") is None  # lost, and b found by its engine only
        assert db.fetch_all("SELECT count(*) FROM secret_store") == [(1,)]
        assert planted(db) == ["table 'secret_store' (its columns not in troth's order)"]
    finally:
        db.close()


def test_a_sync_mark_dropping_autoincrement_is_never_given_twice(tmp_path: Path) -> None:
    """74l planted8 2: a copy holding `feed_syncs_due` as troth makes it but without
    `AUTOINCREMENT` on its `id` (nothing SQLite's pragmas report: the rowid alias, columns and
    index all troth's): SQLite gave a deleted newest mark's number again, review 53h due 2's
    bug back (a node whose syncs stopped at its newest mark read a mark made after a sync
    elsewhere cleared that one as not newer). A table troth makes whose AUTOINCREMENT is not
    troth's (its definition's word) is refused."""
    path = edited_node_db(
        tmp_path,
        "DROP TABLE feed_syncs_due",
        "CREATE TABLE feed_syncs_due (id INTEGER PRIMARY KEY, authority BLOB NOT NULL, "
        "address TEXT NOT NULL, marked_at INTEGER NOT NULL)",
        "CREATE INDEX feed_syncs_due_authority ON feed_syncs_due (authority)",
    )
    db = SqliteDatabase(path)
    try:
        store = SqliteCredentialStore(db)
        first = store.mark_sync_due(_A, "", 1)
        assert store.clear_sync_due(_A, first) == 1
        assert store.mark_sync_due(_A, "", 2) == first  # a number given twice
        assert planted(db) == ["table 'feed_syncs_due' (its AUTOINCREMENT not troth's)"]
    finally:
        db.close()
