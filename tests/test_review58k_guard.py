"""Review 58k: the rollback guard's files kept open per process (troth.storage.guard_file,
review 58a) and the slot rule for scopes this troth does not know (review 58a, guard 2).

guard 1: a child forked by a process that keeps the guard's lock file open inherits its open
file description, which holds the flock: the process killed in a turn (the crash windows of
docs/storage.md) left the lock held for as long as any child it forked lived, so the next
open of the node waited out its busy timeout and failed, every raise refused.

guard 2: a slot of a version this troth does not know (a later troth's: docs/formats.md, "a
scope a later troth adds needs room, or a new version") was skipped as damaged, and the
other, older slot read as the newest: a copy of node.db taken between the two records read as
current, and the next raise wrote its lower counts over the later record."""

from __future__ import annotations

import fcntl
import gc
import os
from pathlib import Path

import pytest

from tests.support.forks import killed_with_a_child_living
from tests.test_review58a_refuted import _guard_fds
from troth.encoding import cbor
from troth.storage import SqliteDatabase, guard_codec, peers
from troth.storage import guard_file as guard_file_module
from troth.storage.guard_file import GuardFiles, guard_files
from troth.storage.rollback import (
    GUARD_SLOT_BYTES,
    GUARD_TYPE,
    RollbackGuard,
    encode_slot,
    guard_path,
    read_guard,
)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() of a threaded process
def test_a_process_killed_in_a_turn_leaves_no_lock_held_by_its_children(tmp_path: Path) -> None:
    """A node process keeps the guard's files open, forks a worker (multiprocessing's
    'fork', a daemon's helper) that lives on, and is killed in a turn: the kernel drops a dead
    writer's flock only when no process holds its description any more."""
    path, lock = tmp_path / "node.db.guard", tmp_path / "node.db.guard.lock"

    def kept() -> GuardFiles:
        files = guard_files(path, lock)
        with files.within(1):
            pass  # a raise: both files kept open
        return files

    with (
        killed_with_a_child_living(kept, lambda files: files.within(1)),
        lock.open("ab") as other,  # the node's next open: its turn is free
    ):
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _framed(record: list[object]) -> bytes:
    return guard_codec._framed(cbor.encode(record))


@pytest.mark.parametrize(
    "later",
    [
        [GUARD_TYPE, 3, 2, {"authority": 2, "identity": 0, "x": 1}],  # a later version
        [GUARD_TYPE, 2, 2, {"authority": 2, "identity": 0, "s" * 17: 1}],  # a longer name
    ],
)
def test_a_later_troths_record_is_not_passed_over_for_the_older_one(
    tmp_path: Path, later: list[object]
) -> None:
    """A later troth counted its `authority` to 2 in a record this troth does not read (seq
    2); the slot beside it holds the record before (version 2, seq 1, `authority` 1). node.db
    put back as it was between the two (`authority` 1) is a restored copy this troth cannot
    tell from a current one: it must fail closed (as a troth before version 2 does for a
    version 2 guard), not read the older record as the newest and the copy as current."""
    db = SqliteDatabase(tmp_path / "node.db")
    try:
        with db.transaction():
            db.execute(
                "INSERT INTO rollback_counters (scope, counter) VALUES ('authority', 1), "
                "('identity', 0)"
            )
        older = encode_slot(1, {"authority": 1, "identity": 0})
        assert len(_framed(later)) == len(older) == GUARD_SLOT_BYTES
        guard_path(db.path).write_bytes(_framed(later) + older)  # seq 2 in slot 0, seq 1 in slot 1
        assert read_guard(guard_path(db.path)) is None  # which is newest: not known here
        assert RollbackGuard(db, "authority").behind()  # armed, no guard read: restored
    finally:
        db.close()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads /proc/self/fd")
def test_a_lock_file_made_again_while_another_thread_asks_leaks_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock file made again (its node made anew): a raise opens it again, and another
    thread asking for the guard's files meanwhile found them closed, made a second set, and
    the first, still used by the raise, was dropped with the guard's descriptor open."""
    db = SqliteDatabase(tmp_path / "node.db")
    try:
        for _ in range(2):  # the second raise opens the guard bound to node.db (review 64j)
            with db.transaction():
                RollbackGuard(db, "identity").bump()
        path = guard_path(db.path)
        lock = path.with_name(f"{path.name}.lock")
        before = _guard_fds()
        real = peers._lock_file  # as guard_file imports it

        def meanwhile(at: Path) -> object:
            monkeypatch.setattr(guard_file_module, "_lock_file", real)
            guard_files(path, lock)  # another thread, as this one opens the lock again
            return real(at)

        lock.unlink()
        monkeypatch.setattr(guard_file_module, "_lock_file", meanwhile)
        for _ in range(2):
            with db.transaction():
                RollbackGuard(db, "identity").bump()
        gc.collect()
        assert _guard_fds() <= before
    finally:
        db.close()
