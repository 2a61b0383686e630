"""The rollback guard's decoded-bytes cache (`troth.storage.rollback._state_of`): a guard is
decoded once per content, and what a read returns is always what the file holds now, never
what this process last wrote or read (another process's write, a damaged slot, a guard taken
away are each seen at the next read)."""

from __future__ import annotations

from pathlib import Path

from troth.storage import SqliteDatabase
from troth.storage.rollback import RollbackGuard, encode_guard, guard_path, read_guard


def _guard(tmp_path: Path) -> tuple[SqliteDatabase, RollbackGuard]:
    db = SqliteDatabase(tmp_path / "node.db")
    guard = RollbackGuard(db, "identity")
    for _ in range(3):
        with db.transaction():
            guard.bump()
    return db, guard


def test_a_guard_another_process_wrote_is_read_as_it_is_now(tmp_path: Path) -> None:
    db, guard = _guard(tmp_path)
    path = guard_path(db.path)
    assert read_guard(path) == {"identity": 3}
    path.write_bytes(encode_guard({"identity": 9, "authority": 2}, seq=40))  # another writer
    assert read_guard(path) == {"identity": 9, "authority": 2}
    assert guard.behind()  # the store's 3 under the guard's 9: a restored copy
    db.close()


def test_a_damaged_or_missing_guard_is_none_after_a_cached_read(tmp_path: Path) -> None:
    db = _guard(tmp_path)[0]
    path = guard_path(db.path)
    good = path.read_bytes()
    assert read_guard(path) == {"identity": 3}
    path.write_bytes(bytes(len(good)))  # both slots zeroed
    assert read_guard(path) is None
    path.write_bytes(good)
    assert read_guard(path) == {"identity": 3}
    path.unlink()
    assert read_guard(path) is None
    db.close()
