"""Review 59l: attacks on review 59c's rotation shortcuts that did not work (each test fails if
the defence it names breaks)."""

from __future__ import annotations

import copy
import dataclasses
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from tests.test_review59c_refuted import _HOLD, _RECORDED
from troth.errors import KeyNotFound, VaultError
from troth.identity.restored import RestoredIdentities
from troth.node import init_node, open_node
from troth.storage.base import LocalIdentityRecord
from troth.storage.rollback import RollbackGuard, decode_slot, read_guard
from troth.storage.sqlite import SqliteDatabase

NOW = 1_790_000_000


def test_a_restore_by_sqlites_backup_moves_the_cookie_past_a_remembered_miss(
    tmp_path: Path,
) -> None:
    """1: a copy two schema changes older put back under a running process by SQLite's
    backup (`sqlite3 node.db .restore copy`), then held by another process: the backup sets
    the cookie one past the file's own (not the copy's), so the hold's tables move it past
    the miss remembered, and the hold is seen."""
    path, copy_path = tmp_path / "node.db", tmp_path / "copy.db"
    db = SqliteDatabase(path)
    try:
        db.execute("CREATE TABLE earlier (x)")
        with sqlite3.connect(copy_path) as copy, sqlite3.connect(path) as live:
            live.backup(copy)
        copy.close()
        live.close()
        db.execute("CREATE TABLE later_one (x)")
        db.execute("CREATE TABLE later_two (x)")
        restores = RestoredIdentities(db)
        assert restores.held(b"x" * 32) is None  # missing: remembered at this cookie
        with sqlite3.connect(copy_path) as copy, sqlite3.connect(path) as live:
            copy.backup(live)  # the copy put back under the running process
        copy.close()
        live.close()
        other = SqliteDatabase(path)
        try:
            with other.transaction():
                other.execute(_HOLD)
                other.execute(_RECORDED)
                other.execute(
                    "CREATE TABLE IF NOT EXISTS identity_restore_feeds "
                    "(authority BLOB PRIMARY KEY, issued_at INTEGER NOT NULL)"
                )
                other.execute("INSERT INTO identity_restore_holds VALUES (?, 7)", (b"x" * 32,))
        finally:
            other.close()
        assert restores.held(b"x" * 32) == 7
    finally:
        db.close()


def test_a_first_count_raced_by_another_connection_counts_both(tmp_path: Path) -> None:
    """3: two connections each counting a scope's first write: the second waits for the
    first's write lock (BEGIN IMMEDIATE), then its UPDATE finds the entry the first inserted:
    no conflict refuses the honest rotation, and the count rises by one for each."""
    first, second = SqliteDatabase(tmp_path / "node.db"), SqliteDatabase(tmp_path / "node.db")
    failures: list[BaseException] = []

    def count_in_second() -> None:
        try:
            with second.transaction():
                RollbackGuard(second, "identity").bump()
        except BaseException as exc:  # raised in the test below
            failures.append(exc)

    try:
        mine = RollbackGuard(first, "identity")
        waiter = threading.Thread(target=count_in_second)
        with first.transaction():
            mine.bump()  # the scope's first count: an INSERT
            waiter.start()  # its BEGIN IMMEDIATE waits for this commit
        waiter.join()
        assert not failures
        assert mine.counter() == 2
        assert (read_guard(mine.path) or {}).get("identity") == 2
    finally:
        first.close()
        second.close()


def test_a_count_rolled_back_after_its_update_is_not_published(tmp_path: Path) -> None:
    """3: a failure between the UPDATE and the commit (a crash there): neither the count nor
    the guard moved, and the next count is one past the committed one."""
    db = SqliteDatabase(tmp_path / "node.db")
    try:
        guard = RollbackGuard(db, "identity")
        with db.transaction():
            guard.bump()
        with pytest.raises(RuntimeError), db.transaction():
            guard.bump()
            raise RuntimeError
        assert guard.counter() == 1
        assert read_guard(guard.path) == {"identity": 1}
        with db.transaction():
            guard.bump()
        assert guard.counter() == 2
        assert read_guard(guard.path) == {"identity": 2}
    finally:
        db.close()


def test_a_guard_replaced_by_a_copy_of_the_last_bytes_written_is_raised_in_place(
    tmp_path: Path,
) -> None:
    """4: the guard replaced (a rename) by another file holding exactly the bytes this
    process wrote last, then raised by another writer: the next raise looks the path up,
    reads the new file's bytes and keeps the other writer's count (never lowered, never
    written to the file it held)."""
    first, second = SqliteDatabase(tmp_path / "node.db"), SqliteDatabase(tmp_path / "node.db")
    try:
        mine, theirs = RollbackGuard(first, "identity"), RollbackGuard(second, "broker")
        for _ in range(2):
            with first.transaction():
                mine.bump()
        same = tmp_path / "same"
        same.write_bytes(mine.path.read_bytes())
        os.replace(same, mine.path)
        theirs._raise_guard(5)
        with first.transaction():
            mine.bump()
        assert read_guard(mine.path) == {"identity": 3, "broker": 5}
    finally:
        first.close()
        second.close()


def test_a_torn_slot_after_the_last_write_is_not_read_as_it(tmp_path: Path) -> None:
    """4: another writer's raise torn in the slot this process did not write last (the
    file's bytes no longer the ones it wrote): decoded, the newest valid slot kept, the next
    raise writes over the torn one and the counts read are the ones counted."""
    db = SqliteDatabase(tmp_path / "node.db")
    try:
        guard = RollbackGuard(db, "identity")
        for _ in range(3):
            with db.transaction():
                guard.bump()
        data = bytearray(guard.path.read_bytes())
        size = len(data) // 2  # version 4's slots since review 64j (bound to node.db)
        slots = [bytes(data[at : at + size]) for at in (0, size)]
        older = 0 if decode_slot(slots[0])[0] < decode_slot(slots[1])[0] else 1
        start = older * size  # the slot the next raise writes, torn there
        data[start : start + 8] = b"\xff" * 8
        guard.path.write_bytes(bytes(data))
        assert read_guard(guard.path) == {"identity": 3}
        with db.transaction():
            guard.bump()
        assert read_guard(guard.path) == {"identity": 4}
    finally:
        db.close()


def test_a_batchs_key_resealed_by_another_connection_is_not_used(tmp_path: Path) -> None:
    """6: a batch's key seen stored, then its row rewritten by another connection (another
    process's rekey: a new nonce): the data version moved, the row is not the one the key
    was cached from, and the vault does not sign with the cached key."""
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        made = node.identities.create_many(2, now=NOW, name_prefix="b")
        number = int(made[0].primary_key.key_id, 16)
        other = SqliteDatabase(node.db.path)
        try:
            with other.transaction():
                other.execute(
                    "UPDATE vault_keys SET sealed = ? WHERE key_id = ?",
                    (b"\x01" + b"\x00" * 12 + b"\x00" * 48, number),
                )
        finally:
            other.close()
        with pytest.raises((KeyNotFound, VaultError)):
            node.identities.vault.sign(made[0].primary_key, b"body")


def test_a_record_set_through_its_slots_stays_frozen_and_whole() -> None:
    """5: LocalIdentityRecord's fields set through their slots: it is still frozen, equal
    and hashed by its fields (the default `change_rows` too), and copied or replaced
    whole."""
    record = LocalIdentityRecord(b"i" * 32, "a", "software:ed25519:01", 1, b"h", 2, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.changes = 3  # type: ignore[misc]
    same = LocalIdentityRecord(b"i" * 32, "a", "software:ed25519:01", 1, b"h", 2, None, 0)
    assert record == same
    assert hash(record) == hash(same)
    assert copy.deepcopy(record) == record
    assert dataclasses.replace(record, changes=3).changes == 3
    assert dataclasses.replace(record, changes=3).history == b"h"
