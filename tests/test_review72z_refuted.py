"""Review 72z, planted2: attacks on 72v's refusal of a restored copy's planted schema
(troth.storage.planted; docs/storage.md, "Rollback guard") that did not work."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

import pytest

from tests.support.backups import restores_found, schema_malformed
from tests.test_review72v_planted import policy_copy_restored
from troth.errors import StorageError
from troth.gates import SqliteBundleTable
from troth.storage import SqliteDatabase
from troth.storage.planted import planted

_HIDDEN: Final = {
    # a foreign-key action SQLite applies, written as a scanner might miss it
    "split_by_comment": "b REFERENCES split_by_comment ON/**/DELETE CASCADE",
    "split_by_line_comment": "b REFERENCES split_by_line_comment ON--'\nDELETE CASCADE",
    "form_feeds": "b REFERENCES form_feeds\fON\fDELETE\fCASCADE",
    "after_brackets": "b REFERENCES[after_brackets]ON DELETE CASCADE",
    "after_double_quotes": 'b REFERENCES"after_double_quotes"ON UPDATE SET NULL',
    "after_backticks": "b REFERENCES `after_backticks`ON DELETE SET DEFAULT",
    "after_match": "b REFERENCES after_match (a) MATCH x ON DELETE CASCADE",
    "table_constraint": "b, FOREIGN KEY (b) REFERENCES table_constraint ON UPDATE CASCADE",
    "after_quotes_of_other_kinds": (
        "b CHECK (b != '[\"`'), [c\"`'] REFERENCES after_quotes_of_other_kinds ON DELETE CASCADE"
    ),
    "after_a_blob": "b DEFAULT x'00', c REFERENCES after_a_blob ON DELETE CASCADE",
    # a conflict clause SQLite applies, written as a scanner might miss it
    "conflict_split": "b UNIQUE ON/* ' */CONFLICT IGNORE",
    "conflict_tabs": "b UNIQUE\tON\tCONFLICT\tREPLACE",
    "conflict_on_the_key": "b, UNIQUE (b) ON\rCONFLICT IGNORE",
}


def test_what_sqlite_applies_the_scanner_finds(tmp_path: Path) -> None:
    """72z refuted: each table SQLite accepts with a foreign-key action or a conflict clause
    written as the scanner (`_words`) might miss it (keywords split by comments, form feeds,
    carriage returns, tabs; after `[...]`, `"..."`, `` `...` ``, strings and blobs holding the
    other quotes; a MATCH clause; a table constraint) is named by `planted`, each as SQLite
    takes it: a foreign-key action where `PRAGMA foreign_key_list` shows one (else a conflict
    clause, which SQLite applies: a second 1 in `b` ignored or replaced)."""
    path = tmp_path / "node.db"
    conn = sqlite3.connect(path)
    for name, columns in _HIDDEN.items():
        conn.execute(f"CREATE TABLE {name} (a INTEGER PRIMARY KEY, {columns})")
    acting = set()
    for name in _HIDDEN:
        actions = {
            action
            for row in conn.execute(f"PRAGMA foreign_key_list({name})")
            for action in row[5:7]
        }
        if actions - {"NO ACTION"}:
            acting.add(name)
        else:
            conn.executemany(f"INSERT INTO {name} (a, b) VALUES (?, 1)", ((1,), (2,)))  # noqa: S608
            assert conn.execute(f"SELECT count(*) FROM {name}").fetchone() == (1,)  # noqa: S608
    conn.commit()
    conn.close()
    assert acting == {name for name in _HIDDEN if not name.startswith("conflict")}
    db = SqliteDatabase(path)
    try:
        assert sorted(planted(db)) == sorted(
            f"table '{name}' ({'a foreign-key action' if name in acting else 'a conflict clause'})"
            for name in _HIDDEN
        )
    finally:
        db.close()


def test_a_keyword_joined_by_a_non_ascii_space_is_a_type_name(tmp_path: Path) -> None:
    """72z refuted: `b UNIQUE\\u00a0ON CONFLICT REPLACE` (a no-break space: UTF-8 bytes past
    0x7f, letters of a name to SQLite) is a column whose type is named `UNIQUE\\u00a0ON
    CONFLICT REPLACE`, no constraint: SQLite keeps both rows of b = 1, and `planted` (which
    reads the same bytes as a name) passes it."""
    path = tmp_path / "node.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b UNIQUE\u00a0ON CONFLICT REPLACE)")
    conn.executemany("INSERT INTO t (a, b) VALUES (?, 1)", ((1,), (2,)))
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)
    conn.commit()
    conn.close()
    db = SqliteDatabase(path)
    try:
        assert planted(db) == []
    finally:
        db.close()


@pytest.mark.parametrize(("name", "kind"), [("g", "table"), ("g", "index"), ("u", "zz")])
def test_a_schema_row_of_another_type_is_malformed(tmp_path: Path, name: str, kind: str) -> None:
    """72z refuted: a trigger (or a table with a conflict clause) whose sqlite_master row is
    given another type (PRAGMA writable_schema), out of `planted`'s `type IN ('trigger',
    'view')` / `type = 'table'`: SQLite refuses the schema (malformed), nothing runs."""
    made = (
        "CREATE TABLE t (a)",
        "CREATE TABLE u (a UNIQUE ON CONFLICT IGNORE)",
        "CREATE TRIGGER g AFTER INSERT ON t BEGIN DELETE FROM t; END",
    )
    edit = ("UPDATE sqlite_master SET type = ? WHERE name = ?", (kind, name))
    assert "malformed database schema" in schema_malformed(tmp_path / "node.db", made, edit)


@pytest.mark.parametrize(
    "made",
    [
        "CREATE TABLE held (authority BLOB UNIQUE, k DEFAULT 0 PRIMARY KEY) WITHOUT ROWID",
        "CREATE TABLE held (authority BLOB PRIMARY KEY, n DEFAULT 0 UNIQUE) WITHOUT ROWID",
    ],
)
def test_held_back_with_another_key_fails_closed(tmp_path: Path, made: str) -> None:
    """72z refuted: `gates_policy_held_back` (no restore check_made covers it) made in the copy
    with another key beside `authority` (a WITHOUT ROWID PRIMARY KEY, a UNIQUE column, each
    defaulting to 0): the policy restore's `INSERT ... ON CONFLICT (authority) DO NOTHING`
    meets the other key's conflict at its second authority, which its DO NOTHING does not
    cover: the restore fails (StorageError), nothing recorded, no bundle left unheld."""
    path = policy_copy_restored(
        tmp_path,
        (made, ()),
        ("DROP TABLE gates_policy_held_back", ()),
        ("ALTER TABLE held RENAME TO gates_policy_held_back", ()),
    )
    db = SqliteDatabase(path)
    try:
        with pytest.raises(StorageError, match="UNIQUE"):
            SqliteBundleTable(db, now=3)
        assert restores_found(path) == []
    finally:
        db.close()


def test_a_definition_cut_by_a_nul_is_read_whole(tmp_path: Path) -> None:
    """72z refuted: a table's sqlite_master.sql rewritten (PRAGMA writable_schema) with a NUL
    after its conflict clause and an unclosed comment past it: SQLite reads the definition up
    to the NUL (the clause applied: a second 1 ignored), `planted` reads its bytes whole
    (`text_sql` casts to a BLOB, nothing cut), the clause first: refused."""
    path = tmp_path / "node.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE p (a INTEGER PRIMARY KEY, b UNIQUE ON CONFLICT IGNORE)")
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute("UPDATE sqlite_master SET sql = sql || ? WHERE name = 'p'", ("\x00 /* ",))
    conn.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executemany("INSERT INTO p (a, b) VALUES (?, 1)", ((1,), (2,)))
    assert conn.execute("SELECT count(*) FROM p").fetchone() == (1,)
    conn.close()
    db = SqliteDatabase(path)
    try:
        assert planted(db) == ["table 'p' (a conflict clause)"]
    finally:
        db.close()
