"""Review 60n: crash consistency, a SIGKILL (`os._exit` at a crash point, troth.faults) at the
worst moment of a multi-step write, the store reopened and its invariants checked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.backups import copy_db, restore_db
from troth.faults import CRASH_ENV, CRASH_EXIT_CODE
from troth.identity.restored import RestoredIdentities, last_rotation
from troth.storage import SqliteDatabase
from troth.storage.rollback import RollbackGuard, read_guard

T = 1_796_000_000
DAY = 86_400

_ROTATE = """
import sys
from pathlib import Path
from troth.identity.restored import RestoredIdentities
from troth.storage import SqliteDatabase
db = SqliteDatabase(Path(sys.argv[1]))
with db.transaction():
    RestoredIdentities(db).count_rotation(int(sys.argv[2]))
"""


def _rotate_in_child(path: Path, at: int, crash_at: str | None) -> int:
    """A rotation's count in a child process, dated `at`, killed at `crash_at` if given."""
    env = dict(os.environ)
    env.pop(CRASH_ENV, None)
    if crash_at is not None:
        env[CRASH_ENV] = crash_at
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", _ROTATE, str(path), str(at)], env=env, timeout=60, check=False
    )
    return done.returncode


def test_a_rotation_killed_before_its_guard_raise_keeps_its_date(tmp_path: Path) -> None:
    """Crash 1: a rotation killed after its commit, before the guard's slot is written (crash
    window 2 of troth.storage.rollback). The next open raises the guard to node.db's count, but
    only the count: the raise time stayed the previous rotation's, so a copy taken between the
    two, restored later, is dated by the older rotation (`last_rotation`), and a feed captured
    between them releases the identity the lost rotation rotated (review 60a, release 1's
    attack back through a crash)."""
    path = tmp_path / "node.db"
    SqliteDatabase(path).close()
    assert _rotate_in_child(path, T, None) == 0
    copy_db(path, tmp_path / "copy.db")  # taken after the first rotation, before the second
    crashed = _rotate_in_child(path, T + DAY, "storage.rollback-guard.before-write")
    assert crashed == CRASH_EXIT_CODE
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
