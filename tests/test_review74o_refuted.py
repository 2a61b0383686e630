"""Review 74o, refuted: 74l's comparison of a restored copy's columns' order and AUTOINCREMENT
with troth's (troth.storage.planted; docs/storage.md, "Rollback guard"), attacked for false
refusals of copies older troths made and for what its prefix rule lets a copy leave out or add.

Beside these tests (too slow for the suite): node.db files made for real by five earlier
troths (db6ff986, 9dee60ea, 6c26f5ef, 71b08a94, 89238988: `git archive`, each one's own tests
of leases, bundles, rotations, traces and the authority run with `--basetemp`), 455 in all,
opened by this troth (migrated) held nothing planted; and every `CREATE TABLE` in the git
history of src (111 statements, 392 revisions), put in a node.db with troth's own ADD COLUMNs
after, held nothing planted but layouts of an untested draft replaced within the hour
(c5e18040 `secret_audit` AUTOINCREMENT, abe7030e `identity_changes`, bf384ce5 `vouchers`) and
tables a later migration remade (`feed_syncs_due`: node.db is migrated before it is compared)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.backups import planted_at
from tests.test_review73a_planted3 import edited_node_db
from troth.errors import StorageError
from troth.storage import SqliteDatabase
from troth.storage.sqlite_credentials import SqliteCredentialStore
from troth.storage.sqlite_schema import NODE_MIGRATIONS
from troth.storage.sqlite_stores import SqliteIdentityStore

_LEASES = (
    "CREATE TABLE secret_leases (locator INTEGER PRIMARY KEY, handle BLOB NOT NULL, "
    "proof BLOB NOT NULL, identity BLOB NOT NULL, account BLOB NOT NULL, secret TEXT NOT NULL, "
    "engine TEXT NOT NULL, scope TEXT NOT NULL, chain_hash BLOB NOT NULL, "
    "authority BLOB NOT NULL, issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, "
    "ttl INTEGER NOT NULL, max_ttl INTEGER NOT NULL, cap_at INTEGER NOT NULL, "
    "state INTEGER NOT NULL, state_at INTEGER NOT NULL, end_reason INTEGER, engine_ref TEXT, "
    "attempts INTEGER NOT NULL DEFAULT 0{})"
)
_RETRY = ", retry_at INTEGER NOT NULL DEFAULT 0"
_LEASE_COLUMNS = (
    "ALTER TABLE secret_leases ADD COLUMN retry_at INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE secret_leases ADD COLUMN request BLOB",
    "ALTER TABLE secret_leases ADD COLUMN request_attempt INTEGER",
)
_DUE = "CREATE TABLE broker_revoke_due (identity BLOB PRIMARY KEY, changes INTEGER NOT NULL) STRICT"
_BUNDLES = (
    "CREATE TABLE gates_policy_bundles (authority BLOB PRIMARY KEY, revision INTEGER NOT NULL, "
    "bundle BLOB NOT NULL, stored_at INTEGER NOT NULL)"
)


@pytest.mark.parametrize(
    "edits",
    [
        (_LEASES.format(""),),  # with account, before review 45b's retry_at (90 revisions)
        (_LEASES.format(""), *_LEASE_COLUMNS),  # ... given its columns by the broker's open
        (_LEASES.format(_RETRY),),  # with retry_at, before review 45i's request (4)
        (_LEASES.format(_RETRY), *_LEASE_COLUMNS[1:]),
        (_DUE,),  # before review 68c's marked (9 revisions)
        (_DUE, "ALTER TABLE broker_revoke_due ADD COLUMN marked INTEGER NOT NULL DEFAULT -1"),
        (_BUNDLES,),  # before the bundles' digest (26 revisions)
        (_BUNDLES, "ALTER TABLE gates_policy_bundles ADD COLUMN digest BLOB"),
    ],
)
def test_the_lazy_layouts_of_earlier_troths_pass(tmp_path: Path, edits: tuple[str, ...]) -> None:
    """74o refuted 1, no false refusal: each layout an earlier troth gave a table it makes
    lazily with columns troth later added by ALTER (git history of every statement), as the
    copy holds it and once troth's module added them at the end, holds nothing planted
    (74l's EARLIER and refuted test hold the lease layouts without `account`)."""
    assert planted_at(edited_node_db(tmp_path, *edits)) == []


def test_a_copy_before_the_last_migration_passes_once_migrated(tmp_path: Path) -> None:
    """74o refuted 2, no false refusal: a copy made before the last migration (schema 20:
    `members` without `quota_ticket`, `tickets` without `uses`) is migrated when opened (ALTER
    puts them at the end, as on a new node.db) and holds nothing planted."""
    path = edited_node_db(
        tmp_path,
        "ALTER TABLE members DROP COLUMN quota_ticket",
        "ALTER TABLE tickets DROP COLUMN uses",
        f"PRAGMA user_version = {len(NODE_MIGRATIONS) - 1}",
    )
    assert planted_at(path) == []


def test_a_column_a_later_migration_adds_made_otherwise_is_refused(tmp_path: Path) -> None:
    """74o refuted 3: a copy of schema 20 holding `members.quota_ticket` at the end (where
    troth's migration 21 adds it) with a DEFAULT of its own: the migration, adding it only
    when missing, keeps the copy's; but the comparison is by the column's name with every
    shape of troth's, so its DEFAULT is refused (as a type or NOT NULL not troth's would be)."""
    path = edited_node_db(
        tmp_path,
        "ALTER TABLE members DROP COLUMN quota_ticket",
        "ALTER TABLE tickets DROP COLUMN uses",
        "ALTER TABLE members ADD COLUMN quota_ticket BLOB DEFAULT X'00'",
        f"PRAGMA user_version = {len(NODE_MIGRATIONS) - 1}",
    )
    assert planted_at(path) == ["table 'members' (a column's DEFAULT not troth's)"]


def test_a_migrated_column_left_out_fails_loudly(tmp_path: Path) -> None:
    """74o refuted 4: the prefix rule passes a copy whose `identities` lacks `linked` (an
    ADD COLUMN of a migration its user_version says ran: none adds it again); no value is
    dropped unseen: troth names the column in each statement that writes or reads it, and
    SQLite refuses the statement (StorageError), as it refuses a write by position whose
    values the copy's columns do not number. A column left out is a value lost no more than
    a copy's own rows are."""
    path = edited_node_db(tmp_path, "ALTER TABLE identities DROP COLUMN linked")
    assert planted_at(path) == []
    db = SqliteDatabase(path)
    try:
        store = SqliteIdentityStore(db)
        with pytest.raises(StorageError, match="linked"):
            store.history_linked(b"\x01" * 32)
    finally:
        db.close()


def test_a_table_made_without_rowid_reads_by_rowid_loudly(tmp_path: Path) -> None:
    """74o refuted 5: a copy's `pending_enrollments` made `WITHOUT ROWID` (troth's columns,
    order and key: its key's index is the same, so nothing compared tells it apart) holds no
    rowid, the order troth lists a node's pending enrollments in (`ORDER BY rowid`): the
    read is refused (StorageError), never answered in another order. troth's tables made
    WITHOUT ROWID made with a rowid instead keep the same rows (their keys' uniqueness is
    the same; troth writes no NULL key)."""
    path = edited_node_db(
        tmp_path,
        "DROP TABLE pending_enrollments",
        "CREATE TABLE pending_enrollments (identifier BLOB NOT NULL, authority BLOB NOT NULL, "
        "ticket TEXT NOT NULL, address TEXT NOT NULL, started_at INTEGER NOT NULL, "
        "PRIMARY KEY (identifier, authority, ticket)) WITHOUT ROWID",
    )
    assert planted_at(path) == []
    db = SqliteDatabase(path)
    try:
        with pytest.raises(StorageError, match="rowid"):
            SqliteCredentialStore(db).list_pending(b"\x01" * 32)
    finally:
        db.close()
