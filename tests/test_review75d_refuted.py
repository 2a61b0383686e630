"""Review 75d, refuted: attacks on the comparison of a restored copy's schema with troth's
(troth.storage.planted; docs/storage.md, "Rollback guard") that are refused, or change
nothing troth's writes and reads keep (tests/test_review75d_planted.py has the ones that
did). A table "in another schema" cannot be one: a database file's schema table holds its
main schema only (ATTACH and TEMP objects live in the connection that made them)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.backups import planted_at
from tests.test_review73a_planted3 import edited_node_db
from troth.secrets.store import SecretRecord, SqliteSecretStore
from troth.storage import SqliteDatabase
from troth.storage.planted import planted

_NAME = "CREATE UNIQUE INDEX {} ON identities (name COLLATE NOCASE) WHERE name IS NOT NULL"


@pytest.mark.parametrize(
    ("edits", "found"),
    [
        (  # a trigger on a table troth writes, deleting what it is given
            ("CREATE TRIGGER t AFTER INSERT ON retired_keys BEGIN DELETE FROM retired_keys; END",),
            ["trigger 't'"],
        ),
        (  # a view named as a table troth makes lazily, the copy holding no table of it
            ("CREATE VIEW Trace_Outbox_Held AS SELECT 1 AS agent",),
            ["view 'Trace_Outbox_Held'"],
        ),
        (  # a UNIQUE index beside troth's keeping names unique in any case
            (_NAME.format("one"),),
            ["index 'one'"],
        ),
        (  # troth's UNIQUE index made again with another collation under its name
            ("DROP INDEX identities_name", _NAME.format("identities_name")),
            [
                "index 'identities_name'",
                "table 'identities' (troth's UNIQUE index 'identities_name' gone)",
            ],
        ),
        (  # a generated column after troth's (nullable: its constraints are refused apart)
            (
                "DROP TABLE retired_keys",
                "CREATE TABLE retired_keys (handle TEXT PRIMARY KEY, "
                "g TEXT AS (lower(handle)) STORED) WITHOUT ROWID",
            ),
            ["table 'retired_keys' (a CHECK or generated column not troth's)"],
        ),
        (  # a virtual table under a name troth never makes: none of troth's statements
            # reads or writes it, and its shadow tables are named after it
            ("CREATE VIRTUAL TABLE planted USING fts4(name)",),
            [],
        ),
    ],
)
def test_a_schema_made_otherwise_is_refused_or_changes_nothing(
    tmp_path: Path, edits: tuple[str, ...], found: list[str]
) -> None:
    """75d refuted: a trigger, a view in a lazily made table's name, UNIQUE indexes with
    another collation (beside troth's, and in its name), a generated column after troth's,
    a virtual table of its own name."""
    assert planted_at(edited_node_db(tmp_path, *edits)) == found


def test_an_index_with_another_collation_finds_by_the_columns_own(tmp_path: Path) -> None:
    """75d refuted: a copy's `secret_store` beside a non-UNIQUE index on `name COLLATE NOCASE`
    passes (an index changes how a row is found, not which: SQLite uses one only when its
    collation is the comparison's, the column's BINARY), and secret `a` is not found as
    `A`."""
    db = SqliteDatabase(edited_node_db(tmp_path))
    try:
        store = SqliteSecretStore(db)
        db.execute("CREATE INDEX folded ON secret_store (name COLLATE NOCASE)")
        store.put_secret(SecretRecord("a", "static", "{}", b"a", 1))
        assert store.get_config("A") is None
        assert store.get_config("a") == ("static", "{}")
        assert planted(db) == []
    finally:
        db.close()


_STORE = (
    "CREATE TABLE secret_store (name TEXT PRIMARY KEY, {}, sealed BLOB NOT NULL, "
    "updated_at INTEGER NOT NULL{})"
)


@pytest.mark.parametrize(
    ("columns", "constraint"),
    [
        ('"engine" TEXT COLLATE NOCASE, [config] TEXT', ""),
        ("`engine` TEXT, config TEXT COLLATE 'rtrim'", ""),
        ("engine TEXT, config TEXT", ", CHECK (config <> 'a COLLATE NOCASE' COLLATE NOCASE)"),
        ("engine VARCHAR(8, 2) /* COLLATE NOCASE */, config TEXT -- COLLATE NOCASE\n", ""),
        (
            'engine TEXT CONSTRAINT "COLLATE" NOT NULL, config TEXT CONSTRAINT c COLLATE [NOCASE]',
            "",
        ),
        (
            "engine TEXT COLLATE NOCASE COLLATE BINARY, config TEXT",
            ", UNIQUE (config COLLATE NOCASE)",
        ),
        ("ENGINE TEXT COLLATE nocase, config TEXT", ""),
    ],
)
def test_the_collations_read_off_a_definition_are_sqlites(
    tmp_path: Path, columns: str, constraint: str
) -> None:
    """75d refuted: a column's collation, read off the words of its table's definition (no
    pragma reports it), is refused exactly where SQLite gives an index on the column another
    than troth's BINARY (index_xinfo): quoted names of each kind, COLLATE in a string, a
    comment or a CHECK, a named column constraint, two COLLATEs (the last holds), a table's
    UNIQUE with its own. 4,000 random definitions were checked alike, none differing."""
    create = _STORE.format(columns, constraint)
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(create)
        collations = set()
        for column in ("engine", "config"):
            conn.execute(f"CREATE INDEX one ON secret_store ({column})")
            ((coll,),) = conn.execute("SELECT coll FROM pragma_index_xinfo('one') WHERE key")
            conn.execute("DROP INDEX one")
            collations.add(str(coll).upper())
    finally:
        conn.close()
    refused = ["table 'secret_store' (a column's collation not troth's)"]
    if constraint.startswith(", UNIQUE"):
        refused.insert(0, "table 'secret_store' (a UNIQUE or PRIMARY KEY not troth's)")
    if constraint.startswith(", CHECK"):
        refused.insert(0, "table 'secret_store' (a CHECK or generated column not troth's)")
    found = planted_at(edited_node_db(tmp_path, create))
    assert found == (refused if collations != {"BINARY"} else refused[:-1])
