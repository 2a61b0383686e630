"""Review 75j, refuted: attacks on 75d's redesign of the comparison of a restored copy's schema
with troth's (troth.storage.planted; docs/storage.md, "Rollback guard") that did not work
(tests/test_review75j_planted9.py has the ones that did). Beside these, 75d's differential
(the unmodified module against the redesigned one) was run again with mutations of quoting
(each kind, for each column's name), comments holding COLLATE / AUTOINCREMENT / ON CONFLICT,
DEFAULTs with parentheses and keywords in strings, CONSTRAINT names and typed lengths: 2,500
copies of troth's tables, no difference but planted9's; 8,600 random definitions read by the
text parser as SQLite reads them (index_xinfo's collation, sqlite_sequence)."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support.backups import planted_at, schema_malformed
from tests.test_review73a_planted3 import edited_node_db
from troth.storage import SqliteDatabase
from troth.storage.lazy_tables import made_lazily
from troth.storage.planted import (
    _COLUMNS,
    _DEFINITION,
    _clause,
    _collations,
    _tokens,
    _words,
    planted,
)


def _as_sqlite_reads(create: str) -> tuple[dict[str, str], bool, bytes]:
    """Each column of the table `t` that `create` makes, by its name folded, to its collation
    as SQLite applies it (index_xinfo of an index on it); whether its rowid is AUTOINCREMENT
    (SQLite made sqlite_sequence); the text SQLite keeps of it."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(create)
        collations = {}
        for (name,) in conn.execute("SELECT name FROM pragma_table_xinfo('t')").fetchall():
            quoted = '"' + str(name).replace('"', '""') + '"'
            conn.execute(f"CREATE INDEX one ON t ({quoted})")
            ((coll,),) = conn.execute("SELECT coll FROM pragma_index_xinfo('one') WHERE key")
            conn.execute("DROP INDEX one")
            collations[str(name).lower()] = str(coll).upper()
        sequence = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")
        ((sql,),) = conn.execute("SELECT CAST(sql AS BLOB) FROM sqlite_master WHERE name = 't'")
        return collations, sequence.fetchone() is not None, bytes(sql)
    finally:
        conn.close()


@pytest.mark.parametrize(
    "columns",
    [
        "a INTEGER PRIMARY KEY /* AUTOINCREMENT */, b TEXT -- COLLATE NOCASE AUTOINCREMENT\n",
        "a INTEGER /* , */ PRIMARY KEY /**/ AUTOINCREMENT -- not\n, b TEXT /* COLLATE */",
        "[autoincrement] INTEGER PRIMARY KEY, b TEXT DEFAULT 'AUTOINCREMENT COLLATE NOCASE'",
        '"collate" TEXT COLLATE NOCASE, "check" TEXT, \'on\' TEXT, `constraint` TEXT',
        "key TEXT COLLATE NOCASE, conflict TEXT, replace TEXT COLLATE /* NOCASE */ RTRIM",
        "a VARCHAR ( 10 ) COLLATE NOCASE, b DECIMAL(10, 2) /* COLLATE NOCASE */",
        "a TEXT DEFAULT ('(' || ')' || 'COLLATE NOCASE') COLLATE RTRIM, "
        "b TEXT DEFAULT (CASE WHEN 1 THEN ')' ELSE ',x COLLATE NOCASE' END)",
        'a TEXT CONSTRAINT "COLLATE" COLLATE NOCASE, b TEXT CONSTRAINT [x] '
        "CHECK (b COLLATE NOCASE <> '') REFERENCES t2 (x)",
        'a TEXT, b TEXT, UNIQUE (a COLLATE NOCASE), CONSTRAINT "b" PRIMARY KEY (b COLLATE RTRIM)',
        "a TEXT DEFAULT ';' COLLATE NOCASE /* ; */ -- ;\n, "
        '[b;] TEXT, "c;" TEXT /* ON CONFLICT */',
    ],
)
def test_the_definitions_words_are_read_as_sqlite_reads_them(columns: str) -> None:
    """75j refuted: a comment holding COLLATE, AUTOINCREMENT, a `,` or ON CONFLICT inside a
    column's definition (either way: hiding a real one, or faking one), columns named as
    keywords (quoted, or bare where SQLite takes the word as a name), CONSTRAINT names, a
    COLLATE in a table's constraint or a CHECK (not the column's), DEFAULTs
    with parentheses and keywords in strings, a type with parentheses before a COLLATE, a
    `;` inside a string, a name or a comment (not the statement's end): each column's
    collation and the AUTOINCREMENT read off the words are SQLite's, and no clause or text
    past the end is found."""
    collations, autoincrement, sql = _as_sqlite_reads(f"CREATE TABLE t ({columns})")
    tokens = list(_tokens(sql.decode()))
    read = _collations(tokens)
    assert {name: read.get(name, "BINARY") for name in collations} == collations
    assert ("AUTOINCREMENT" in _words(tokens)) == autoincrement
    assert _clause(sql) is None


@pytest.mark.parametrize(
    ("edits", "found"),
    [
        (  # AUTOINCREMENT dropped and a CHECK added: the first named, refused once
            (
                "DROP TABLE feed_syncs_due",
                "CREATE TABLE feed_syncs_due (id INTEGER PRIMARY KEY, authority BLOB NOT NULL, "
                "address TEXT NOT NULL, marked_at INTEGER NOT NULL CHECK (marked_at > 0))",
            ),
            ["table 'feed_syncs_due' (its AUTOINCREMENT not troth's)"],
        ),
        (  # keyed by engine and its columns reordered: the key named, the order not compared
            (
                "CREATE TABLE secret_store (engine TEXT PRIMARY KEY, name TEXT NOT NULL, "
                "config TEXT NOT NULL, sealed BLOB NOT NULL, updated_at INTEGER NOT NULL)",
            ),
            ["table 'secret_store' (a UNIQUE or PRIMARY KEY not troth's)"],
        ),
        (  # troth's own kept, a column's type and another's DEFAULT changed: both named
            (
                "CREATE TABLE secret_store (name TEXT PRIMARY KEY, engine NUMERIC NOT NULL, "
                "config TEXT NOT NULL DEFAULT '', sealed BLOB NOT NULL, "
                "updated_at INTEGER NOT NULL)",
            ),
            [
                "table 'secret_store' (a column's DEFAULT not troth's)",
                "table 'secret_store' (a column's type not troth's)",
            ],
        ),
    ],
)
def test_a_table_unlike_troths_in_many_ways_is_refused_once_named(
    tmp_path: Path, edits: tuple[str, ...], found: list[str]
) -> None:
    """75j refuted: `_unlike` names a table's own difference by the first of `_OWN_LEVELS` it
    differs in, and compares the order only where the copy's own is troth's: whatever is
    named, a copy whose own matches no shape of troth's is refused (the last level compares
    the whole), and each column fact is compared apart."""
    assert planted_at(edited_node_db(tmp_path, *edits)) == found


_ONE = "CREATE UNIQUE INDEX one ON identities (name COLLATE NOCASE)"


@pytest.mark.parametrize(
    ("column", "value"),
    [("name", "other"), ("tbl_name", "secret_store"), ("tbl_name", "zz")],
)
def test_a_schema_row_named_otherwise_than_its_text_is_malformed(
    tmp_path: Path, column: str, value: str
) -> None:
    """75j refuted: a UNIQUE index's `sqlite_master` row given another name or table than its
    text says (`PRAGMA writable_schema`), so that `planted`'s lookups by those (pragma
    index_list of `tbl_name`, joined on `name`) would miss it: SQLite refuses the schema
    (malformed), nothing runs."""
    made = ("CREATE TABLE identities (name TEXT)", _ONE)
    edit = (f"UPDATE sqlite_master SET {column} = ? WHERE name = 'one'", (value,))  # noqa: S608
    assert "malformed database schema" in schema_malformed(tmp_path / "node.db", made, edit)
    assert schema_malformed(tmp_path / "fine.db", made) == ""


class _Counted(SqliteDatabase):
    """node.db counting the queries run on it with `fetch_all`, by their text."""

    counts: Counter[str]

    def fetch_all(self, sql: str, params: tuple[object, ...] = ()) -> list[Any]:
        self.counts[sql] += 1
        return super().fetch_all(sql, params)


def test_each_table_is_read_once(tmp_path: Path) -> None:
    """75j refuted (cost): `planted` on a node.db as troth makes it reads each table's
    definition and columns once (75d's one shape per table; timed on a fresh node.db with
    every lazily made table: ~8 ms where the unmodified module took ~12, ~45 ms where it took
    ~100 with troth's shapes made first), and finds nothing."""
    db = _Counted(edited_node_db(tmp_path, *made_lazily()))
    db.counts = Counter()
    try:
        assert planted(db) == []
        tables = len(db.fetch_all("SELECT name FROM sqlite_master WHERE type = 'table'"))
        assert db.counts[_DEFINITION] == db.counts[_COLUMNS] == tables > 20
    finally:
        db.close()
