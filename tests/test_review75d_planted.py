"""Review 75d, planted: what a restored copy of node.db can still hide from the comparison
of its tables with troth's (troth.storage.planted; docs/storage.md, "Rollback guard"): the
words of a table's definition were upper-cased by Python's rules (Unicode), SQLite's names
and keywords fold ASCII only, so a column whose name Python folds to another's read as it."""

from __future__ import annotations

from pathlib import Path

from tests.support.backups import planted_at
from tests.test_review73a_planted3 import edited_node_db
from tests.test_review74i_planted7 import _LEASES

_LONG_S = "\u017f"  # upper-cased by Python to S, by SQLite to itself
_DOTLESS_I = "\u0131"  # upper-cased by Python to I, by SQLite to itself


def test_a_collation_is_not_hidden_by_a_column_named_in_unicode(tmp_path: Path) -> None:
    """75d planted 1: a copy's `secret_leases` with `secret` compared NOCASE (74i planted7 2:
    secret `db`'s leases found as `DB`'s) and, after troth's columns, a column `secret` spelled
    with U+017F (long s) declared COLLATE BINARY: Python upper-cases U+017F to `S`, so the
    collations read off the definition gave `secret` that column's, BINARY, and the copy
    passed; to SQLite it is another column (its names fold ASCII only). In such a copy the
    lease of secret `db` was found as `DB`'s (74i planted7 2's test). Refused now."""
    head, _, tail = _LEASES.replace(
        "secret TEXT NOT NULL", "secret TEXT NOT NULL COLLATE NOCASE"
    ).rpartition(")")
    planted_leases = f"{head}, {_LONG_S}ecret BLOB COLLATE BINARY){tail}"
    assert planted_at(edited_node_db(tmp_path, planted_leases)) == [
        "table 'secret_leases' (a column's collation not troth's)"
    ]


def test_a_dropped_autoincrement_is_not_hidden_by_a_column_named_in_unicode(
    tmp_path: Path,
) -> None:
    """75d planted 2: a copy's `feed_syncs_due` without AUTOINCREMENT (74l planted8 2: a sync
    mark's number given twice) and, after troth's columns, one named `autoincrement` spelled
    with U+0131 (dotless i): Python upper-cases it to the keyword, so the definition read as
    keyed AUTOINCREMENT and the copy passed; a deleted newest mark's number was given again
    (74l planted8 2's test). Refused now."""
    path = edited_node_db(
        tmp_path,
        "DROP TABLE feed_syncs_due",
        "CREATE TABLE feed_syncs_due (id INTEGER PRIMARY KEY, authority BLOB NOT NULL, "
        "address TEXT NOT NULL, marked_at INTEGER NOT NULL, auto" + _DOTLESS_I + "ncrement BLOB)",
        "CREATE INDEX feed_syncs_due_authority ON feed_syncs_due (authority)",
    )
    assert planted_at(path) == ["table 'feed_syncs_due' (its AUTOINCREMENT not troth's)"]


def test_a_type_is_read_as_sqlite_folds_it(tmp_path: Path) -> None:
    """75d planted 3 (1's cause, no harm of its own): a copy's `secret_store.updated_at`
    declared `integer` spelled with U+0131 (dotless i) read as INTEGER, troth's; SQLite's
    affinity for it is NUMERIC (no `INT` in ASCII), which stores as INTEGER does, so nothing
    was lost, but the type was read by other rules than SQLite's. Refused now as any type
    not troth's."""
    path = edited_node_db(
        tmp_path,
        "CREATE TABLE secret_store (name TEXT PRIMARY KEY, engine TEXT NOT NULL, "
        "config TEXT NOT NULL, sealed BLOB NOT NULL, updated_at " + _DOTLESS_I + "nteger NOT NULL)",
    )
    assert planted_at(path) == ["table 'secret_store' (a column's type not troth's)"]


def test_a_type_past_what_is_read_is_not_taken_for_blobs(tmp_path: Path) -> None:
    """75d planted 4 (no harm found): a type is read up to 4 KiB (`text_sql`), and one longer
    was read as none, BLOB's affinity: a copy's `secret_meta.value` (troth's BLOB) declared
    with a 5 KiB type holding `INT` passed, though SQLite gives it INTEGER's affinity (a text
    or real value written to it is stored as a number where it reads as one; troth writes it
    bytes and whole numbers, which no affinity changes). Refused now as a type not troth's."""
    path = edited_node_db(
        tmp_path,
        "CREATE TABLE secret_meta (name TEXT PRIMARY KEY, value " + "X" * 5000 + "INT NOT NULL)",
    )
    assert planted_at(path) == ["table 'secret_meta' (a column's type not troth's)"]
