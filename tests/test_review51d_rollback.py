"""Review 51d, rollback 1-2: the rollback guard beside node.db (troth.storage.rollback;
docs/storage.md, "Rollback guard"; docs/formats.md, "Rollback guard"). Its crash windows (a
crash never makes a current store look restored, nor a restored one current), the attacker's
moves on the guard file (deleted, damaged, replaced by a link, its scope's entry dropped, an
older guard put back with the store), writers that never lower it, and its golden vectors."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.backups import copy_db, restore_db
from troth import limits
from troth.errors import DecodeError
from troth.storage import SqliteDatabase
from troth.storage.rollback import (
    GUARD_BOUND_SLOT_BYTES,
    GUARD_SLOT_BYTES,
    Restored,
    RollbackGuard,
    decode_guard,
    decode_slot,
    encode_guard,
    encode_slot,
    guard_path,
    read_guard,
    restored_rows,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "storage" / "guard_vectors.json").read_text()
)["vectors"]


class Killed(Exception):
    """A crash at a crash point (the process would end there: what it wrote stands)."""


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqliteDatabase]:
    database = SqliteDatabase(tmp_path / "node.db")
    yield database
    database.close()


def _bump(guard: RollbackGuard, db: SqliteDatabase, times: int = 1) -> None:
    with db.transaction():
        for _ in range(times):
            guard.bump()


def _kill_at(monkeypatch: pytest.MonkeyPatch, point: str, hit: int = 1) -> None:
    """Raise Killed at the `hit`-th pass of crash point `point` of troth.storage.rollback."""
    seen = {"n": 0}

    def crash(name: str) -> None:
        if name == point:
            seen["n"] += 1
            if seen["n"] == hit:
                raise Killed(name)

    monkeypatch.setattr("troth.storage.rollback.crash_point", crash)


def _voided() -> int:
    return 7


# -- a current store ---------------------------------------------------------------------------


def test_a_fresh_store_is_current_and_writes_no_guard(db: SqliteDatabase) -> None:
    guard = RollbackGuard(db, "authority")
    assert guard.check(NOW, _voided) is None
    assert not guard_path(db.path).exists()  # an open of a current store only reads


def test_each_irreversible_write_raises_the_guard_after_its_commit(db: SqliteDatabase) -> None:
    guard = RollbackGuard(db, "broker")
    _bump(guard, db, times=3)  # a batch: counted 3, the guard written once, after the commit
    assert guard.counter() == 3
    assert read_guard(guard_path(db.path)) == {"broker": 3}
    _bump(guard, db)
    assert read_guard(guard_path(db.path)) == {"broker": 4}
    assert guard.check(NOW, _voided) is None
    assert oct(guard_path(db.path).stat().st_mode & 0o777) == "0o600"


def test_a_bump_outside_its_writes_transaction_is_refused(db: SqliteDatabase) -> None:
    from troth.errors import StorageError

    with pytest.raises(StorageError, match="inside its transaction"):
        RollbackGuard(db, "broker").bump()


def test_the_scopes_are_counted_apart(db: SqliteDatabase) -> None:
    authority, broker = RollbackGuard(db, "authority"), RollbackGuard(db, "broker")
    _bump(authority, db)
    _bump(broker, db, times=2)
    assert read_guard(guard_path(db.path)) == {"authority": 1, "broker": 2}
    with pytest.raises(ValueError, match="unknown rollback scope"):
        RollbackGuard(db, "vault")


# -- crash windows -----------------------------------------------------------------------------


def test_killed_before_the_commit_neither_moved(
    db: SqliteDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Window 1: the write rolled back (as a kill before COMMIT leaves it); the first bump's
    entry, written before the commit at the store's count, reads current."""
    guard = RollbackGuard(db, "authority")
    with pytest.raises(Killed), db.transaction():
        guard.bump()
        raise Killed("authority.enroll.before-commit")
    assert guard.counter() == 0
    assert read_guard(guard_path(db.path)) == {"authority": 0}
    assert guard.check(NOW, _voided) is None


@pytest.mark.parametrize("first", [True, False])
def test_killed_after_the_commit_before_the_guards_rename_reads_current(
    db: SqliteDatabase, monkeypatch: pytest.MonkeyPatch, first: bool
) -> None:
    """Window 2: the store is ahead of its guard, never behind (the first bump of a scope
    wrote its entry before the commit: a store with a count and no entry is never left by a
    crash); the check raises the guard to the store."""
    guard = RollbackGuard(db, "authority")
    if not first:
        _bump(guard, db)
    # the first bump writes twice: its entry before the commit (the guard made), its count after
    _kill_at(monkeypatch, "storage.rollback-guard.before-write", hit=2 if first else 1)
    with pytest.raises(Killed):
        _bump(guard, db)
    counter = guard.counter()
    assert read_guard(guard_path(db.path)) == {"authority": counter - 1}
    assert not [p for p in db.path.parent.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.undo()
    assert guard.check(NOW, _voided) is None
    assert read_guard(guard_path(db.path)) == {"authority": counter}  # raised to the store


def test_killed_after_the_write_reads_current(
    db: SqliteDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Window 3: the slot written and synced: current."""
    guard = RollbackGuard(db, "broker")
    _bump(guard, db)
    _kill_at(monkeypatch, "storage.rollback-guard.after-write")
    with pytest.raises(Killed):
        _bump(guard, db)
    assert read_guard(guard_path(db.path)) == {"broker": 2}
    assert guard.check(NOW, _voided) is None


def test_a_torn_slot_leaves_the_record_before_it(db: SqliteDatabase) -> None:
    """Window 2, torn: a raise writes the slot not holding the newest record; half of it
    written (a power loss mid-write) fails its checksum, and the record before it is the
    guard: the store is ahead of it (current), never behind."""
    guard = RollbackGuard(db, "broker")
    _bump(guard, db)  # made with record 1 (count 0) before the commit, record 2 after it
    _bump(guard, db)  # record 3, in slot 1
    path = guard_path(db.path)  # bound to node.db at record 2 (review 64j): version 4's slots
    assert decode_slot(path.read_bytes()[:GUARD_BOUND_SLOT_BYTES]) == (2, {"broker": 1})
    assert decode_slot(path.read_bytes()[GUARD_BOUND_SLOT_BYTES:]) == (3, {"broker": 2})
    _bump(guard, db)  # record 4 goes to slot 0, the older one: torn there
    data = bytearray(path.read_bytes())
    data[30:60] = os.urandom(30)
    path.write_bytes(bytes(data))
    assert read_guard(path) == {"broker": 2}
    assert guard.check(NOW, _voided) is None
    assert read_guard(path) == {"broker": 3}  # raised again (record 4), into the torn slot
    assert decode_slot(path.read_bytes()[:GUARD_BOUND_SLOT_BYTES]) == (4, {"broker": 3})


def test_a_restore_killed_before_its_commit_is_found_again(
    db: SqliteDatabase, tmp_path: Path
) -> None:
    """A kill while failing closed: nothing of it committed, the count not raised, so the
    next open finds the copy again and fails closed in full."""
    guard = RollbackGuard(db, "authority")
    copy = tmp_path / "copy.db"
    copy_db(db.path, copy)
    _bump(guard, db)

    def killed() -> int:
        raise Killed("fail closed")

    restore_db(db.path, copy)
    restored_db = SqliteDatabase(db.path)
    try:
        again = RollbackGuard(restored_db, "authority")
        with pytest.raises(Killed):
            again.check(NOW, killed)
        assert again.counter() == 0
        found = again.check(NOW, _voided)
        assert found == Restored("authority", 0, 1, 7, NOW)
    finally:
        restored_db.close()


def test_a_restore_is_found_once_and_recorded(db: SqliteDatabase, tmp_path: Path) -> None:
    guard = RollbackGuard(db, "broker")
    _bump(guard, db)
    copy = tmp_path / "copy.db"
    copy_db(db.path, copy)
    _bump(guard, db, times=2)
    db.close()
    restore_db(db.path, copy)
    restored_db = SqliteDatabase(db.path)
    other = SqliteDatabase(db.path)  # another process's handle on the same node.db
    try:
        found = RollbackGuard(restored_db, "broker").check(NOW, _voided)
        assert found == Restored("broker", 1, 3, 7, NOW)
        assert RollbackGuard(other, "broker").check(NOW + 1, _voided) is None  # once
        assert RollbackGuard(restored_db, "broker").counter() == 3
        assert restored_rows(other) == [found]  # what `troth node status` shows
        assert found.to_json()["guard"] == 3
    finally:
        other.close()
        restored_db.close()


# -- the attacker's moves on the guard ---------------------------------------------------------


def _restored_after(db: SqliteDatabase, tmp_path: Path, scope: str = "authority") -> Path:
    """`db` with one counted write; a copy from before a second; the second made."""
    guard = RollbackGuard(db, scope)
    _bump(guard, db)
    copy = tmp_path / "copy.db"
    copy_db(db.path, copy)
    _bump(guard, db)
    return copy


@pytest.mark.parametrize(
    "damage",
    [
        "deleted",
        "garbage",
        "empty",
        "oversize",
        "both slots torn",
        "wrong type",
        "unknown scope",
        "link",
        "dir",
    ],
)
def test_a_guard_deleted_or_damaged_fails_closed(
    db: SqliteDatabase, tmp_path: Path, damage: str
) -> None:
    """No readable guard and a store that counted a write: a restored copy (fail closed),
    whatever was done to the guard, never a fresh store; then the guard is written again."""
    _restored_after(db, tmp_path)
    path = guard_path(db.path)
    path.unlink()
    if damage == "garbage":
        path.write_bytes(os.urandom(40))
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "oversize":
        path.write_bytes(encode_guard({"authority": 9}) + bytes(1))
    elif damage == "both slots torn":
        path.write_bytes(bytes(a ^ 1 for a in encode_slot(2, {"authority": 9}) * 2))
    elif damage == "wrong type":
        path.write_bytes(_forged(["troth.rollback-guarc", 1, 1, {"authority": 9}]))
    elif damage == "unknown scope":
        path.write_bytes(_forged(["troth.rollback-guard", 1, 1, {"authorizy": 9}]))
    elif damage == "link":
        target = tmp_path / "elsewhere"
        target.write_bytes(encode_guard({"authority": 2}))
        path.symlink_to(target)
    elif damage == "dir":
        path.mkdir()
    guard = RollbackGuard(db, "authority")
    if damage == "dir":
        assert guard.behind()
        return  # (a directory cannot be renamed over: the open fails closed each time)
    found = guard.check(NOW, _voided)
    assert found == Restored("authority", 2, None, 7, NOW)
    assert read_guard(path) == {"authority": 2}
    assert not path.is_symlink()
    assert guard.check(NOW, _voided) is None


def test_a_guard_without_its_scopes_entry_fails_closed(db: SqliteDatabase, tmp_path: Path) -> None:
    """The broker's entry dropped from the guard (the authority's kept): the broker's count
    has no entry to be under, so its store is a restored copy for the broker only."""
    _bump(RollbackGuard(db, "authority"), db)
    _bump(RollbackGuard(db, "broker"), db)
    guard_path(db.path).write_bytes(encode_guard({"authority": 1}))
    assert RollbackGuard(db, "authority").check(NOW, _voided) is None
    assert RollbackGuard(db, "broker").check(NOW, _voided) == Restored("broker", 1, None, 7, NOW)


def test_a_guard_put_back_with_its_store_is_not_found(db: SqliteDatabase, tmp_path: Path) -> None:
    """The limit (docs/storage.md, "Rollback guard"): a guard copied with node.db and put back
    with it matches it. Backups must leave `node.db.guard` out."""
    guard = RollbackGuard(db, "authority")
    _bump(guard, db)
    copy, kept = tmp_path / "copy.db", guard_path(db.path).read_bytes()
    copy_db(db.path, copy)
    _bump(guard, db)
    db.close()
    restore_db(db.path, copy)
    guard_path(db.path).write_bytes(kept)
    restored_db = SqliteDatabase(db.path)
    try:
        assert RollbackGuard(restored_db, "authority").check(NOW, _voided) is None
    finally:
        restored_db.close()


def test_the_guard_is_never_lowered(db: SqliteDatabase, tmp_path: Path) -> None:
    """A writer raising it to an older count (a process whose commit came first, publishing
    after another's) leaves the newer count: a copy taken between them stays found."""
    guard = RollbackGuard(db, "broker")
    _bump(guard, db, times=5)
    guard._raise_guard(2)
    assert read_guard(guard_path(db.path)) == {"broker": 5}
    copy = _restored_after(db, tmp_path, "broker")
    db.close()
    restore_db(db.path, copy)
    restored_db = SqliteDatabase(db.path)
    try:
        assert RollbackGuard(restored_db, "broker").behind()
    finally:
        restored_db.close()


def test_a_power_loss_undoing_a_counted_commit_reads_as_restored(db: SqliteDatabase) -> None:
    """`durability = normal`: a power loss may undo the last commits, not the fsynced guard;
    the store then lost a redemption or revocation exactly as a restored copy does, and is
    failed closed on (the count set back by hand: what the undone commit leaves)."""
    guard = RollbackGuard(db, "authority")
    _bump(guard, db, times=2)
    db.execute("UPDATE rollback_counters SET counter = 1 WHERE scope = 'authority'")
    assert guard.check(NOW, _voided) == Restored("authority", 1, 2, 7, NOW)


# -- the guard's format (docs/formats.md, "Rollback guard") ------------------------------------


def _forged(value: list[Any]) -> bytes:
    """A guard file whose slot 1 holds `value` with a right checksum (what a forger writes)."""
    from troth.crypto import sha256
    from troth.encoding import cbor

    body = cbor.encode(value)
    slot = (len(body).to_bytes(2, "big") + body + sha256(body)[:16]).ljust(GUARD_SLOT_BYTES, b"\0")
    return bytes(GUARD_SLOT_BYTES) + slot


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_the_golden_guards(name: str) -> None:
    """Rebuilt byte for byte, decoded to the newest valid slot; a slot as docs/formats.md lays
    it out (length, CBOR, 16 bytes of its SHA-256, zeros)."""
    from tests.vectors.storage.generate import build
    from troth.crypto import sha256
    from troth.encoding import cbor

    vector = VECTORS[name]
    assert build()[name] == vector
    data = bytes.fromhex(vector["guard"])
    assert len(data) == limits.MAX_ROLLBACK_GUARD_BYTES == 2 * GUARD_SLOT_BYTES
    assert decode_guard(data) == (vector["seq"], vector["counts"])
    slot = encode_slot(vector["seq"], vector["counts"])
    assert slot in (data[:GUARD_SLOT_BYTES], data[GUARD_SLOT_BYTES:])
    body = cbor.encode(["troth.rollback-guard", vector["version"], vector["seq"], vector["counts"]])
    assert slot.rstrip(b"\0") == (len(body).to_bytes(2, "big") + body + sha256(body)[:16]).rstrip(
        b"\0"
    )


@pytest.mark.parametrize(
    ("counts", "problem"),
    [
        ({"broker": limits.MAX_ROLLBACK_COUNTER + 1}, "over MAX_ROLLBACK_COUNTER"),
        ({"broker": -1}, "below 0"),
        ({"broker": True}, "expected an integer"),
        ({"vault": 1}, "unknown scope"),
    ],
)
def test_a_guard_out_of_its_bounds_is_refused(counts: dict[str, Any], problem: str) -> None:
    with pytest.raises(DecodeError, match=problem):
        decode_guard(_forged(["troth.rollback-guard", 1, 1, counts]))


def test_a_guard_of_another_version_or_layout_is_refused() -> None:
    with pytest.raises(DecodeError, match="unknown version"):
        decode_guard(_forged(["troth.rollback-guard", 3, 1, {"broker": 1}]))
    with pytest.raises(DecodeError, match="expected a map"):
        decode_guard(_forged(["troth.rollback-guard", 1, 1, [1]]))
    with pytest.raises(DecodeError, match="sequence number over"):
        decode_guard(_forged(["troth.rollback-guard", 1, 1 << 63, {}]))
    with pytest.raises(DecodeError, match="damaged"):  # not zeros after the checksum
        decode_guard(_forged(["troth.rollback-guard", 1, 1, {}])[:-1] + b"x")
    with pytest.raises(DecodeError, match="bytes"):
        decode_guard(encode_guard({"broker": 1})[:-1])


@pytest.mark.parametrize("durability", ["normal", "full"])
def test_the_guard_is_as_durable_as_the_writes_it_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durability: str
) -> None:
    """`durability = full` fdatasyncs each raise (node.db fsyncs each commit); `normal` does
    not (nor does node.db: a power loss may undo the last of either, docs/storage.md)."""
    synced: list[int] = []
    real = os.fdatasync

    def spy(fd: int) -> None:
        synced.append(fd)
        real(fd)

    database = SqliteDatabase(tmp_path / "node.db", durability)  # type: ignore[arg-type]
    try:
        guard = RollbackGuard(database, "broker")
        _bump(guard, database)  # makes the guard (fsync, rename, directory fsync)
        monkeypatch.setattr(os, "fdatasync", spy)
        _bump(guard, database)
        assert read_guard(guard_path(database.path)) == {"broker": 2}
        assert len(synced) == (1 if durability == "full" else 0)
    finally:
        database.close()
