"""Review 75j, planted9: what a restored copy of node.db can still hide from the comparison of
its schema with troth's (troth.storage.planted; docs/storage.md, "Rollback guard"): SQLite
reads a table's or an index's text in `sqlite_master` up to the end of its one statement (a
`;`, or a NUL: it prepares the text as a C string and compiles its first statement only), and
`planted` read the text whole, so words past that end (written there with `PRAGMA
writable_schema`) were read as the definition's though SQLite never applied them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.test_review73a_planted3 import edited_node_db
from tests.test_review74i_planted7 import _LEASES, _REST, _ROW
from troth.secrets import store_schema
from troth.secrets.lease import LeaseState
from troth.secrets.store import SqliteSecretStore
from troth.storage import SqliteDatabase
from troth.storage.planted import planted
from troth.storage.sqlite_credentials import SqliteCredentialStore

_ENDS = ["char(0)", "';'"]
"""Where SQLite's reading of a schema row's text ends: a NUL, a `;` (outside quotes)."""


def _past_end(name: str, end: str, words: str) -> tuple[str, str]:
    """The statements writing `words` past the end (`end`, an SQL expression) of `name`'s text
    in `sqlite_master`."""
    return (
        "PRAGMA writable_schema = ON",
        f"UPDATE sqlite_master SET sql = sql || {end} || '{words}' WHERE name = '{name}'",  # noqa: S608
    )


@pytest.mark.parametrize("end", _ENDS)
def test_an_autoincrement_past_the_end_is_not_read(tmp_path: Path, end: str) -> None:
    """75j planted9 1: a copy's `feed_syncs_due` without AUTOINCREMENT (74l planted8 2) whose
    text in `sqlite_master` goes on past its end with the word `AUTOINCREMENT` (after a NUL,
    or after a `;`): SQLite makes the table without it and gave a deleted newest sync mark's
    number again (review 53h due 2's bug), and `planted` read the word and passed the copy.
    Refused now: the text past the end, and the AUTOINCREMENT the table lacks."""
    path = edited_node_db(
        tmp_path,
        "DROP TABLE feed_syncs_due",
        "CREATE TABLE feed_syncs_due (id INTEGER PRIMARY KEY, authority BLOB NOT NULL, "
        "address TEXT NOT NULL, marked_at INTEGER NOT NULL)",
        "CREATE INDEX feed_syncs_due_authority ON feed_syncs_due (authority)",
        *_past_end("feed_syncs_due", end, " AUTOINCREMENT"),
    )
    db = SqliteDatabase(path)
    try:  # found before the store is made (it rebuilds a table: SQLite rewrites the texts)
        assert planted(db) == [
            "table 'feed_syncs_due' (text past its definition)",
            "table 'feed_syncs_due' (its AUTOINCREMENT not troth's)",
        ]
        store = SqliteCredentialStore(db)
        first = store.mark_sync_due(b"\x0a" * 32, "", 1)
        assert store.clear_sync_due(b"\x0a" * 32, first) == 1
        assert store.mark_sync_due(b"\x0a" * 32, "", 2) == first  # a number given twice
    finally:
        db.close()


@pytest.mark.parametrize("end", _ENDS)
def test_a_collation_past_the_end_is_not_read(tmp_path: Path, end: str) -> None:
    """75j planted9 2: a copy's `secret_leases` with `secret` compared NOCASE (74i planted7 2)
    whose text goes on past its end with `(secret COLLATE BINARY)`: `planted` read the last
    COLLATE of `secret` (SQLite's rule for one definition) from past the end, BINARY, troth's,
    and passed the copy; SQLite compares `secret` NOCASE, and the lease of secret `db` was
    found as `DB`'s. Refused now."""
    path = edited_node_db(
        tmp_path,
        _LEASES.replace("secret TEXT NOT NULL", "secret TEXT NOT NULL COLLATE NOCASE"),
        *_past_end("secret_leases", end, " (secret COLLATE BINARY)"),
    )
    db = SqliteDatabase(path)
    try:
        assert planted(db) == [
            "table 'secret_leases' (text past its definition)",
            "table 'secret_leases' (a column's collation not troth's)",
        ]
        db.execute(store_schema.INSERT_LEASE[(False, False)], (*_ROW, "db", *_REST))
        assert len(SqliteSecretStore(db).open_leases_of_secret("DB")) == 1  # secret db's lease
    finally:
        db.close()


@pytest.mark.parametrize("end", _ENDS)
def test_a_partial_clause_past_the_end_is_not_read(tmp_path: Path, end: str) -> None:
    """75j planted9 3: a copy's `revocations_once` made UNIQUE over every kind (troth's: `WHERE
    kind < 3`) whose text goes on past its end with ` WHERE kind < 3`: `planted` read that
    partial clause as the index's and passed the copy; SQLite's index is not partial, and an
    authority's second supersession (kind 3) of one identity, which every rotation after the
    first appends, failed. Refused now."""
    path = edited_node_db(
        tmp_path,
        "DROP INDEX revocations_once",
        "CREATE UNIQUE INDEX revocations_once ON revocations (kind, target)",
        *_past_end("revocations_once", end, " WHERE kind < 3"),
    )
    conn = sqlite3.connect(path)
    try:
        assert conn.execute(
            "SELECT partial FROM pragma_index_list('revocations') WHERE name = 'revocations_once'"
        ).fetchall() == [(0,)]
        insert = "INSERT INTO revocations VALUES (?, x'', x'', 3, x'01', 0, NULL, ?, NULL)"
        conn.execute(insert, (1, 1))
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            conn.execute(insert, (2, 2))
    finally:
        conn.close()
    db = SqliteDatabase(path)
    try:
        assert planted(db) == [
            "index 'revocations_once'",
            "table 'revocations' (troth's UNIQUE index 'revocations_once' gone)",
        ]
    finally:
        db.close()


def test_a_locator_left_unkeyed_after_the_first_layouts_key_is_refused(tmp_path: Path) -> None:
    """75j planted9 4: a copy's `secret_leases` keyed by `handle` as the broker's first layout
    was (`EARLIER`: its key and first column only), followed by every column of troth's, so
    `locator` and `account` too (the broker retires a table without them, `_retire_old_leases`:
    this one it keeps): the order was compared with that shape's start and only the rowid's
    names were refused after it, though `planted` says columns troth never made may follow.
    `locator` is troth's key in its other layouts; here unkeyed, a lease whose locator another
    held (its 28 random bits drawn again in one second) was written beside it where troth's key
    refuses it (the issue draws another id), and the prune of the revoked one deleted the other,
    open, lease with it (`locator IN (...)`): a lease never revoked at its end. Refused now: no
    column one of troth's shapes keys may follow another shape's columns."""
    keyed = _LEASES.replace("locator INTEGER PRIMARY KEY, handle BLOB NOT NULL", "locator INTEGER")
    path = edited_node_db(
        tmp_path, keyed.replace("secret_leases (", "secret_leases (handle BLOB PRIMARY KEY, ")
    )
    db = SqliteDatabase(path)
    try:
        assert planted(db) == ["table 'secret_leases' (its columns not in troth's order)"]
        store, insert = SqliteSecretStore(db), store_schema.INSERT_LEASE[(False, False)]
        revoked = (*_REST[:-3], int(LeaseState.REVOKED), 0, b"")
        db.execute(insert, (_ROW[0], b"\x04" * 16, *_ROW[2:], "db", *revoked))
        db.execute(insert, (*_ROW, "db", *_REST))  # the same locator, written
        assert store.prune_ended(1, limit=10) == 2  # the open lease deleted with the revoked
    finally:
        db.close()
