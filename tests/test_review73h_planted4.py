"""Review 73h, planted4: the review of 73a's refusal of planted UNIQUE indexes (planted3 1),
and its planted3 2: a table troth makes, made again in a copy with another UNIQUE or PRIMARY
KEY (docs/storage.md, "Rollback guard")."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from tests.test_review72v_planted import _A
from tests.test_review73a_planted3 import _X, edited_node_db
from troth.storage import SqliteDatabase
from troth.storage.base import MemberRecord
from troth.storage.planted import planted
from troth.storage.sqlite_authority import SqliteAuthorityStore
from troth.storage.sqlite_stores import SqliteIdentityStore

_MEMBERS = (
    "CREATE TABLE members (identifier BLOB {}, attributes BLOB NOT NULL, "
    "added_by BLOB NOT NULL {}, added_at INTEGER NOT NULL, quota_ticket BLOB)"
)


def _members_again(tmp_path: Path, identifier: str, added_by: str) -> SqliteDatabase:
    """A new node.db whose `members` is made again, `identifier` and `added_by` (its columns'
    constraints) as given."""
    path = edited_node_db(tmp_path, "DROP TABLE members", _MEMBERS.format(identifier, added_by))
    return SqliteDatabase(path)


def test_a_primary_key_moved_in_a_table_made_again_is_refused(tmp_path: Path) -> None:
    """73h planted4 1: `members` made again with its PRIMARY KEY on `added_by` (not on
    `identifier`): no index, no conflict clause, so 73a's rule passed it; troth writes a member
    with `INSERT OR REPLACE`, so the second member one hand enrolled deleted the first. A
    table troth's migrations make whose own uniqueness (UNIQUE, PRIMARY KEY, the rowid's
    alias) is not troth's is now refused as 73a's UNIQUE index is."""
    db = _members_again(tmp_path, "NOT NULL", "PRIMARY KEY")
    try:
        store = SqliteAuthorityStore(db)
        for member in (_X, b"\x02" * 32):
            store.put_member(MemberRecord(member, b"", _A, NOW))
        assert [m.identifier for m in store.list_members()] == [b"\x02" * 32]  # _X deleted
        assert planted(db) == ["table 'members' (a UNIQUE or PRIMARY KEY not troth's)"]
    finally:
        db.close()


def test_a_primary_key_dropped_in_a_table_made_again_is_refused(tmp_path: Path) -> None:
    """73h planted4 2: `members` made again with no PRIMARY KEY: troth's `INSERT OR REPLACE`
    of a member's new attributes kept the old row beside the new, and the member was read with
    the attributes it was given first (`get_member`: the first row). Less uniqueness than
    troth's is refused too."""
    db = _members_again(tmp_path, "NOT NULL", "")
    try:
        store = SqliteAuthorityStore(db)
        store.put_member(MemberRecord(_X, b"old", _A, NOW))
        store.put_member(MemberRecord(_X, b"new", _A, NOW + 1))
        member = store.get_member(_X)
        assert member is not None
        assert member.attributes == b"old"
        assert planted(db) == ["table 'members' (a UNIQUE or PRIMARY KEY not troth's)"]
    finally:
        db.close()


def test_a_lazily_made_table_made_again_is_refused(tmp_path: Path) -> None:
    """73h planted4 3: a copy holding `trace_outbox_held` made with `reason TEXT UNIQUE`:
    troth keeps an agent's hold with `INSERT OR REPLACE`, so one agent's hold for a reason
    deleted another agent's hold for the same reason, and its records went out. The tables
    troth makes lazily are compared too (74c planted6 1: troth.storage.lazy_tables)."""
    path = edited_node_db(
        tmp_path,
        "CREATE TABLE trace_outbox_held (agent BLOB PRIMARY KEY, reason TEXT NOT NULL UNIQUE, "
        "detail TEXT NOT NULL, record TEXT, since INTEGER NOT NULL)",
    )
    db = SqliteDatabase(path)
    try:
        assert planted(db) == ["table 'trace_outbox_held' (a UNIQUE or PRIMARY KEY not troth's)"]
    finally:
        db.close()


def test_a_unique_index_of_troths_dropped_is_refused(tmp_path: Path) -> None:
    """73h planted4 4: a copy holding `identities` as troth makes it but not its UNIQUE index
    `identities_name` (dropped): 73a's rule refuses an index troth does not make, not one it
    makes gone, so a second local identity took a name one already had (no ConflictError) and
    the name found the first. A table troth's migrations make without one of troth's UNIQUE
    indexes is refused too."""
    db = SqliteDatabase(edited_node_db(tmp_path, "DROP INDEX identities_name"))
    try:
        store = SqliteIdentityStore(db)
        store.add_locals([(_X, b"h", "alice", "k1", "n1", NOW)])
        store.add_locals([(b"\x02" * 32, b"h", "alice", "k2", "n2", NOW)])
        found = store.find_local(name="alice")
        assert found is not None
        assert found.identifier == _X
        assert planted(db) == ["table 'identities' (troth's UNIQUE index 'identities_name' gone)"]
    finally:
        db.close()
