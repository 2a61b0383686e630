"""Review 59c: attacks on the rotation's cheaper statements that did not work (each test fails
if the defence it names breaks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from troth.errors import KeyNotFound
from troth.identity.restored import RestoredIdentities
from troth.node import init_node, open_node
from troth.storage.rollback import RollbackGuard, read_guard
from troth.storage.sqlite import SqliteDatabase

NOW = 1_790_000_000
_RECORDED = (  # the restore recorded, as in the transaction that makes the holds' table
    "INSERT INTO rollback_counters (scope, counter, restored_at) VALUES ('identity', 0, 1) "
    "ON CONFLICT (scope) DO UPDATE SET restored_at = 1"
)
_HOLD = (
    "CREATE TABLE IF NOT EXISTS identity_restore_holds "
    "(identifier BLOB PRIMARY KEY, held_at INTEGER NOT NULL)"
)


def test_a_hold_made_by_another_connection_after_a_miss_is_seen(tmp_path: Path) -> None:
    """The holds' table found missing, then made (with a hold) by another process: the
    cookie moved, so the next look-up finds the hold (a cached miss would let the held
    identity sign)."""
    first, second = SqliteDatabase(tmp_path / "node.db"), SqliteDatabase(tmp_path / "node.db")
    try:
        restores = RestoredIdentities(first)
        assert restores.held(b"x" * 32) is None  # missing, at this cookie
        assert restores.held(b"x" * 32) is None  # (the miss kept: no scan)
        with second.transaction():
            second.execute(_HOLD)
            second.execute(_RECORDED)
            second.execute("INSERT INTO identity_restore_holds VALUES (?, 7)", (b"x" * 32,))
        assert restores.held(b"x" * 32) == 7
    finally:
        first.close()
        second.close()


def test_a_table_seen_in_a_transaction_rolled_back_is_not_kept(tmp_path: Path) -> None:
    """The table made and seen inside a transaction that rolls back: not kept as seen (the
    next look-up would fail on a table that is not there), nor its cookie as a miss."""
    db = SqliteDatabase(tmp_path / "node.db")
    try:
        restores = RestoredIdentities(db)
        with pytest.raises(RuntimeError), db.transaction():
            db.execute(_HOLD)
            db.execute(_RECORDED)
            assert restores.held(b"x" * 32) is None  # seen, empty
            raise RuntimeError
        assert restores.held(b"x" * 32) is None  # no table: no statement on it
        other = SqliteDatabase(tmp_path / "node.db")
        try:
            with other.transaction():
                other.execute(_HOLD)
                other.execute(_RECORDED)
                other.execute("INSERT INTO identity_restore_holds VALUES (?, 9)", (b"x" * 32,))
        finally:
            other.close()
        assert restores.held(b"x" * 32) == 9
    finally:
        db.close()


def test_a_guard_written_by_another_process_is_not_read_as_the_last_one_written(
    tmp_path: Path,
) -> None:
    """The raise compares the guard's bytes with the last it wrote before decoding: another
    writer's raise (other bytes) is decoded, and its higher count kept (never lowered)."""
    first, second = SqliteDatabase(tmp_path / "node.db"), SqliteDatabase(tmp_path / "node.db")
    try:
        mine, theirs = RollbackGuard(first, "identity"), RollbackGuard(second, "broker")
        with first.transaction():
            mine.bump()
        with second.transaction():
            theirs.bump()
        with first.transaction():
            mine.bump()
        assert read_guard(mine.path) == {"identity": 2, "broker": 1}
        theirs._raise_guard(5)
        mine._raise_guard(1)  # lower than the guard's: nothing written
        assert read_guard(mine.path) == {"identity": 2, "broker": 5}
    finally:
        first.close()
        second.close()


def test_a_batchs_key_deleted_by_another_connection_is_not_used(tmp_path: Path) -> None:
    """Rotate 6: the keys of a batch are seen stored as of the data version read before they
    were written; another connection's deletion after the batch moves it, so the key's row is
    looked up before its use, and it signs nothing."""
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        (made,) = node.identities.create_many(1, now=NOW, name_prefix="b")
        other = SqliteDatabase(node.db.path)
        try:
            with other.transaction():
                other.execute(
                    "DELETE FROM vault_keys WHERE key_id = ?", (int(made.primary_key.key_id, 16),)
                )
        finally:
            other.close()
        with pytest.raises(KeyNotFound):
            node.identities.vault.sign(made.primary_key, b"body")
