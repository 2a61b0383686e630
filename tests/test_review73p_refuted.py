"""Review 73p, planted5: attacks on 73h's comparison of a restored copy's tables with troth's
that did not work (tests/test_review73p_planted5.py has the one that did): no false refusal of
a node.db any earlier troth made and this one migrated, and the policy restore's write to a
table made outside the migrations (not compared: 73h planted4 3) fails, never skips a row,
where the copy's key of it is not troth's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.backups import restores_found
from tests.test_review72v_planted import _A, _B, policy_copy_restored
from tests.test_review73a_refuted import _held_back
from troth.errors import StorageError
from troth.gates import SqliteBundleTable
from troth.storage import SqliteDatabase
from troth.storage.planted import planted
from troth.storage.sqlite_credentials import SqliteCredentialStore
from troth.storage.sqlite_schema import NODE_MIGRATIONS


def test_a_node_db_of_every_earlier_schema_migrated_holds_nothing_planted(
    tmp_path: Path,
) -> None:
    """73p refuted (a false refusal looked for, the worst outcome: the operator hand-edits
    SQLite): a node.db made by the troth of each earlier schema (its first `n` migrations, for
    every n: no migration's key changed since it was released, `git log` of the migration
    lists checked: only comments and columns were edited), migrated by this troth, before and
    after the credential store rebuilds `pending_enrollments`: every table the migrations
    upgrade (ALTER TABLE ADD COLUMN adds no UNIQUE; `revocations`, `feeds` and
    `feed_syncs_due` rebuilt by copy: made as a new node.db's) keeps troth's UNIQUE, PRIMARY
    KEY and rowid column, and troth's UNIQUE indexes: nothing is refused."""
    for n in range(len(NODE_MIGRATIONS)):
        path = tmp_path / f"node{n}.db"
        SqliteDatabase(path, migrations=NODE_MIGRATIONS[:n]).close()
        db = SqliteDatabase(path)
        try:
            assert planted(db) == [], n
            SqliteCredentialStore(db)
            assert planted(db) == [], n
        finally:
            db.close()


_NOT_TROTHS = "'gates_policy_held_back' \\(a UNIQUE or PRIMARY KEY not troth's\\)"


@pytest.mark.parametrize(
    ("remade", "error"),
    [
        ("CREATE TABLE held (authority BLOB NOT NULL)", _NOT_TROTHS),
        (
            "CREATE TABLE held (authority BLOB PRIMARY KEY, one INTEGER NOT NULL DEFAULT 0 UNIQUE)",
            _NOT_TROTHS,
        ),
    ],
)
def test_the_policy_restores_upsert_fails_on_a_key_not_troths(
    tmp_path: Path, remade: str, error: str
) -> None:
    """73p refuted (73h planted4 3's bound): a copy holding `gates_policy_held_back` (made
    lazily, not compared) made again with no key, or with a second UNIQUE every row meets: the
    policy restore writes it with an upsert on the authority (`ON CONFLICT (authority) DO
    NOTHING`, targeted), which SQLite refuses without that key and which meets any other
    uniqueness with an error: the restore's transaction fails (StorageError), nothing recorded,
    found again; made again as troth makes it, both bundles are held back. Since 74c planted6 1
    the lazily made tables are compared: the restore found is refused before it writes."""
    path = policy_copy_restored(
        tmp_path,
        (remade, ()),
        ("DROP TABLE gates_policy_held_back", ()),
        ("ALTER TABLE held RENAME TO gates_policy_held_back", ()),
    )
    db = SqliteDatabase(path)
    try:
        with pytest.raises(StorageError, match=error):
            SqliteBundleTable(db, now=3)
    finally:
        db.close()
    assert restores_found(path) == []
    db = SqliteDatabase(path)
    db.execute("DROP TABLE gates_policy_held_back")
    db.close()
    assert _held_back(path) == {_A, _B}
