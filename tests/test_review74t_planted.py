"""Review 74t, blind2: mutations of `troth.storage.planted` no test of this session's caught
(docs/storage.md, "Rollback guard"): a collation named in lower case, a quoted column name,
a type with a comma in its parentheses, a STRICT table's ANY. Each case below fails with
the one comparison it guards mutated (report of helper 74t), passes on main."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.backups import planted_at
from tests.test_review73a_planted3 import edited_node_db
from tests.test_review74i_planted7 import _LEASES

_SECRET = "secret TEXT NOT NULL"
_NOCASE = ["table 'secret_leases' (a column's collation not troth's)"]


@pytest.mark.parametrize(
    ("column", "found"),
    [
        # the collation's name upper-cased before it is compared (BINARY is troth's)
        ("secret TEXT NOT NULL COLLATE binary", []),
        # the column's name unquoted before its collation is looked up
        ('"secret" TEXT NOT NULL COLLATE NOCASE', _NOCASE),
        # a comma inside a type's parentheses starts no column (depth kept)
        ("secret VARCHAR(8, 2) NOT NULL COLLATE NOCASE", _NOCASE),
    ],
)
def test_a_collation_is_read_off_the_column_it_is_declared_on(
    tmp_path: Path, column: str, found: list[str]
) -> None:
    """74t blind2 1-3: `_collations` upper-cases the collation's name, unquotes the column's,
    and reads only the table's own level of parentheses: mutated, a copy's `secret_leases`
    comparing `secret` NOCASE (74i planted7 2: another secret's leases found) passed, or
    troth's own BINARY spelled in lower case was refused."""
    planted_leases = _LEASES.replace(_SECRET, column)
    assert planted_leases != _LEASES
    assert planted_at(edited_node_db(tmp_path, planted_leases)) == found


def test_a_strict_tables_any_column_keeps_blobs_as_troths_blob(tmp_path: Path) -> None:
    """74t blind2 4: a STRICT `secret_store` whose `sealed` is ANY keeps what is written as
    written, as troth's BLOB does (`_affinity`: BLOB's); mutated (ANY read as NUMERIC) the
    copy was refused for a type it does not change."""
    strict = (
        "CREATE TABLE secret_store (name TEXT PRIMARY KEY, engine TEXT NOT NULL, "
        "config TEXT NOT NULL, sealed ANY NOT NULL, updated_at INTEGER NOT NULL) STRICT"
    )
    assert planted_at(edited_node_db(tmp_path, strict)) == []


def test_an_order_is_compared_with_the_shapes_holding_the_same_keys(tmp_path: Path) -> None:
    """74t blind2 5: the columns' order is compared only with troth's shapes of the table with
    the copy's keys (74l planted8 1): a copy's `secret_leases` keyed by `locator` as today but
    with `handle` first (the order of the earliest layout, keyed by `handle`) is refused;
    compared with every shape (the filter by keys dropped), it passed."""
    swapped = _LEASES.replace(
        "locator INTEGER PRIMARY KEY, handle BLOB NOT NULL,",
        "handle BLOB NOT NULL, locator INTEGER PRIMARY KEY,",
    )
    assert swapped != _LEASES
    assert planted_at(edited_node_db(tmp_path, swapped)) == [
        "table 'secret_leases' (its columns not in troth's order)"
    ]
