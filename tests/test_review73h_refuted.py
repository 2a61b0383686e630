"""Review 73h, planted4: attacks on 73a's refusal of planted UNIQUE indexes (and on 73h's of a
table's own UNIQUE or PRIMARY KEY) that did not work: no false refusal of a node.db troth
filled, no UNIQUE index that passes as troth's, the reference made once a process."""

from __future__ import annotations

from pathlib import Path

import pytest

import troth
from tests.support.backups import node_db, planted_at
from tests.test_review73a_planted3 import edited_node_db
from troth.errors import StorageError
from troth.gates import SqliteBundleTable
from troth.secrets.store import SqliteSecretStore
from troth.storage import SqliteDatabase
from troth.storage.planted import _migrated, planted
from troth.storage.sqlite_credentials import SqliteCredentialStore
from troth.trace.outbox_store import OutboxStore


def test_a_node_db_troth_filled_holds_nothing_planted(troth_home: Path) -> None:
    """73h refuted: the node.db of an authority that made a ticket and of a node enrolled with
    it, the trace outbox's, the gates' and the broker's tables made in it too (the tables troth
    makes lazily: the authority's, the credential store's `pending_enrollments` rebuilt by
    ticket, the outbox's `record UNIQUE`...), holds no UNIQUE, PRIMARY KEY or UNIQUE index
    refused: a restore put back on either is not refused for them."""
    with troth.Node.open("acme") as acme:
        ticket = acme.create_authority().ticket({"team.name": "y"})
    with troth.Node.open("b") as b:
        b.enroll(ticket)
    assert planted_at(node_db(troth_home, "acme")) == []
    db = SqliteDatabase(node_db(troth_home, "b"))
    try:
        OutboxStore(db), SqliteBundleTable(db, now=1), SqliteSecretStore(db)
        assert planted(db) == []
    finally:
        db.close()


def test_pending_enrollments_keyed_either_way_is_troths(tmp_path: Path) -> None:
    """73h refuted: `pending_enrollments` as the migrations make it (keyed by identity and
    authority) and as the credential store rebuilds it when opened (and ticket: review 61l)
    are both troth's; a copy restored before the store is opened is not refused for it."""
    db = SqliteDatabase(edited_node_db(tmp_path))
    try:
        assert planted(db) == []
        SqliteCredentialStore(db)  # rebuilds the table keyed by ticket
        assert planted(db) == []
    finally:
        db.close()


@pytest.mark.parametrize(
    ("name", "index"),
    [
        ("odd", "create   unique\n  index IF not exists odd on members (lower(added_by))"),
        ("identities_name", "CREATE UNIQUE INDEX identities_name ON identities (name)"),
        ("idx", "CREATE UNIQUE INDEX idx ON identities (NAME) WHERE NAME IS NOT NULL AND 1"),
    ],
)
def test_a_unique_index_not_troths_is_refused_however_written(
    tmp_path: Path, name: str, index: str
) -> None:
    """73h refuted (73a planted3 1's rule): a UNIQUE index on an expression, made with odd
    spacing and case and IF NOT EXISTS; one named as troth's `identities_name` (dropped, also
    found gone: 73h planted4 4) that keeps all names unique (no partial clause); one with
    troth's key and a partial clause holding more words: each is refused."""
    dropped = name == "identities_name"
    path = edited_node_db(tmp_path, "DROP INDEX identities_name" if dropped else "SELECT 1", index)
    gone = ["table 'identities' (troth's UNIQUE index 'identities_name' gone)"] if dropped else []
    assert planted_at(path) == [f"index {name!r}", *gone]


def test_an_index_moved_to_another_table_in_the_schema_fails_closed(tmp_path: Path) -> None:
    """73h refuted: `sqlite_master` written (`writable_schema`) so a UNIQUE index on `members`
    reads as one of another table (`tbl_name`), which `planted`'s query joins on: SQLite
    refuses the schema at open (malformed), so no restore is found on it."""
    path = edited_node_db(
        tmp_path,
        "CREATE UNIQUE INDEX one ON members (added_by)",
        "PRAGMA writable_schema = 1",
        "UPDATE sqlite_master SET tbl_name = 'tickets' WHERE name = 'one'",
    )
    with pytest.raises(StorageError):
        planted_at(path)


def test_troths_schema_is_made_once_a_process(tmp_path: Path) -> None:
    """73h refuted (cost): the reference `planted` compares with (troth's migrations run in
    memory) is made once a process, not once a restore found: a second look makes none."""
    path = edited_node_db(tmp_path)
    planted_at(path)
    made = _migrated.cache_info().misses
    planted_at(path)
    assert _migrated.cache_info().misses == made
