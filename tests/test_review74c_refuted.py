"""Review 74c, refuted: a second review of 73h's and 73p's refusals of a restored copy's
schema (docs/storage.md, "Rollback guard"): each planted piece below is refused, or changes
nothing troth's writes keep (tests/test_review74c_planted6.py has the ones that did)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.backups import planted_at
from tests.test_review72v_planted import _A, _B, policy_copy_restored
from tests.test_review73a_planted3 import _X, edited_node_db
from tests.test_review73a_refuted import _held_back
from troth.errors import StorageError
from troth.storage import SqliteDatabase
from troth.storage.sqlite_stores import SqliteIdentityStore

_KEYS = "a UNIQUE or PRIMARY KEY not troth's"


@pytest.mark.parametrize(
    ("edits", "found"),
    [
        (  # a trigger on a table troth makes lazily: refused as any trigger not troth's
            (
                "CREATE TABLE trace_outbox_held (agent BLOB PRIMARY KEY, reason TEXT NOT NULL, "
                "detail TEXT NOT NULL, record TEXT, since INTEGER NOT NULL)",
                "CREATE TRIGGER gone AFTER INSERT ON trace_outbox_held BEGIN "
                "DELETE FROM trace_outbox_held; END",
            ),
            ["trigger 'gone'"],
        ),
        (  # a view in a lazily made table's name: refused as any view
            ("CREATE VIEW trace_outbox_held AS SELECT 1 AS agent",),
            ["view 'trace_outbox_held'"],
        ),
        (  # COLLATE NOCASE on a key column: another key (its collation compared)
            (
                "CREATE TABLE gates_policy_held_back (authority BLOB COLLATE NOCASE PRIMARY KEY) "
                "WITHOUT ROWID",
            ),
            [  # 74i planted7 2: the column's collation is compared too
                f"table 'gates_policy_held_back' ({_KEYS})",
                "table 'gates_policy_held_back' (a column's collation not troth's)",
            ],
        ),
        (  # WITHOUT ROWID on a table keyed by its rowid: `pos` no longer made by SQLite
            (
                "CREATE TABLE trace_outbox (pos INTEGER PRIMARY KEY, record TEXT UNIQUE) "
                "WITHOUT ROWID",
            ),
            [f"table 'trace_outbox' ({_KEYS})"],
        ),
        (  # a generated column with no constraint: troth makes none (it skips no row, but
            # it is not troth's)
            (
                "CREATE TABLE trace_log_lost (identifier BLOB PRIMARY KEY, at INTEGER NOT NULL, "
                "g AS (at + 1))",
            ),
            ["table 'trace_log_lost' (a CHECK or generated column not troth's)"],
        ),
        (  # table-level UNIQUE where troth writes it on the column: the same uniqueness
            (
                "CREATE TABLE trace_outbox (pos INTEGER PRIMARY KEY, agent BLOB NOT NULL, "
                "record TEXT NOT NULL, UNIQUE (record))",
            ),
            [],
        ),
        (  # troth's partial UNIQUE index made again, spelled otherwise: the same uniqueness
            (
                "DROP INDEX identities_name",
                'create unique index "identities_name" on "identities" ( name )\n'
                "where name is NOT null",
            ),
            [],
        ),
    ],
)
def test_a_planted_piece_is_refused_or_keeps_what_troths_does(
    tmp_path: Path, edits: tuple[str, ...], found: list[str]
) -> None:
    """74c refuted: a trigger on a lazily made table, a view in its name, COLLATE NOCASE on a
    key column, WITHOUT ROWID on a table keyed by its rowid, a generated column: each refused
    (a restore found on such a copy records nothing until it is made again); a table-level
    UNIQUE equal to troth's column-level one, troth's partial UNIQUE index spelled otherwise:
    what they keep unique is troth's, so they pass."""
    assert planted_at(edited_node_db(tmp_path, *edits)) == found


def test_a_partial_index_spelled_otherwise_keeps_names_unique(tmp_path: Path) -> None:
    """74c refuted: with `identities_name` made again spelled otherwise (and passed), a
    second local identity taking a name one has is refused as with troth's."""
    path = edited_node_db(
        tmp_path,
        "DROP INDEX identities_name",
        "CREATE UNIQUE INDEX identities_name ON identities(name) WHERE name IS NOT NULL",
    )
    db = SqliteDatabase(path)
    try:
        store = SqliteIdentityStore(db)
        store.add_locals([(_X, b"h", "alice", "k1", "n1", 1)])
        with pytest.raises(StorageError):
            store.add_locals([(b"\x02" * 32, b"h", "alice", "k2", "n2", 1)])
    finally:
        db.close()


def test_a_held_back_table_made_with_a_rowid_holds_back_every_bundle(tmp_path: Path) -> None:
    """74c refuted: a copy holding `gates_policy_held_back` made without WITHOUT ROWID (same
    key: passed, as a rowid table keyed by a BLOB keeps the same rows unique): the policy
    restore's upsert holds back both bundles, as with troth's."""
    path = policy_copy_restored(
        tmp_path,
        ("DROP TABLE gates_policy_held_back", ()),
        ("CREATE TABLE gates_policy_held_back (authority BLOB PRIMARY KEY)", ()),
    )
    assert _held_back(path) == {_A, _B}
