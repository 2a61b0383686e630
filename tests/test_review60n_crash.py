"""Review 60n: crash consistency, a SIGKILL (`os._exit` at a crash point, troth.faults) at the
worst moment of a multi-step write, the store reopened and its invariants checked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support.backups import copy_db, restore_db
from tests.support.killed import killed_after
from troth.faults import CRASH_EXIT_CODE
from troth.identity.restored import RestoredIdentities, last_rotation
from troth.storage import SqliteDatabase
from troth.storage.rollback import RollbackGuard, read_guard

T = 1_796_000_000
DAY = 86_400


def _count_rotation(path: Path, at: int) -> Callable[[], None]:
    def count() -> None:
        db = SqliteDatabase(path)
        with db.transaction():
            RestoredIdentities(db).count_rotation(at)
        db.close()

    return count


def test_a_rotation_killed_before_its_guard_raise_keeps_its_date(tmp_path: Path) -> None:
    """Crash 1: a rotation killed after its commit, before the guard's slot is written (crash
    window 2 of troth.storage.rollback). The next open raises the guard to node.db's count, but
    only the count: the raise time stayed the previous rotation's, so a copy taken between the
    two, restored later, is dated by the older rotation (`last_rotation`), and a feed captured
    between them releases the identity the lost rotation rotated (review 60a, release 1's
    attack back through a crash)."""
    path = tmp_path / "node.db"
    SqliteDatabase(path).close()
    assert killed_after(0, _count_rotation(path, T)) == 0
    copy_db(path, tmp_path / "copy.db")  # taken after the first rotation, before the second
    second = _count_rotation(path, T + DAY)
    assert killed_after(0, second, "storage.rollback-guard.before-write") == CRASH_EXIT_CODE
    db = SqliteDatabase(path)
    guard = RollbackGuard(db, "identity")
    assert not guard.behind()  # current, the guard raised to its count
    assert read_guard(guard.path) == {"identity": 2}
    assert guard.raised_at() == T + DAY
    db.close()
    restore_db(path, tmp_path / "copy.db")
    db = SqliteDatabase(path)
    assert RestoredIdentities(db).check(T + 2 * DAY) is not None
    assert last_rotation(db) == T + DAY
    db.close()
