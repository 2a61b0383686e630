"""Review 58a: the rollback guard's files kept open per process (troth.storage.guard_file, to
cut what counting a rotation cost): attempts to make a raise write where it no longer counts,
or hold the guard's lock together with another writer, that did not work (each fails if the
defence breaks)."""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.backups import copy_db, restore_db
from troth.errors import StorageError
from troth.storage import SqliteDatabase
from troth.storage import guard_file as guard_file_module
from troth.storage.guard_file import guard_files
from troth.storage.rollback import RollbackGuard, encode_guard, guard_path, read_guard

_TURN_WAIT = 0.05  # seconds a turn held elsewhere is waited for here


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqliteDatabase]:
    database = SqliteDatabase(tmp_path / "node.db", busy_timeout=_TURN_WAIT)
    yield database
    database.close()


def _bump(db: SqliteDatabase, scope: str = "identity") -> None:
    with db.transaction():
        RollbackGuard(db, scope).bump()


def _lock_path(db: SqliteDatabase) -> Path:
    path = guard_path(db.path)
    return path.with_name(f"{path.name}.lock")


def test_a_guard_replaced_by_another_writer_is_raised_where_it_is_now(
    db: SqliteDatabase,
) -> None:
    """The guard this process holds open is replaced (another process made it anew: a
    rename over it): the next raise writes the file at the path, not the one held."""
    _bump(db)
    _bump(db)
    path = guard_path(db.path)
    replacement = path.with_name("replacement")
    replacement.write_bytes(encode_guard({"identity": 2, "authority": 7}, seq=5))
    os.replace(replacement, path)
    _bump(db)
    assert read_guard(path) == {"identity": 3, "authority": 7}


def test_a_guard_deleted_or_made_a_link_is_none_and_made_again(
    db: SqliteDatabase, tmp_path: Path
) -> None:
    _bump(db)
    path = guard_path(db.path)
    path.unlink()
    assert RollbackGuard(db, "identity").behind()  # counted, no guard: a restored copy
    _bump(db)  # made again (the store's count)
    assert read_guard(path) == {"identity": 2}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(encode_guard({"identity": 9}))
    path.unlink()
    path.symlink_to(elsewhere)
    _bump(db)  # a link is no guard: replaced, never written through
    assert not path.is_symlink()
    assert read_guard(path) == {"identity": 3}
    assert read_guard(elsewhere) == {"identity": 9}


def test_a_raise_by_another_process_is_read_and_a_copy_from_before_it_found(
    db: SqliteDatabase, tmp_path: Path
) -> None:
    """This process keeps the guard open (and the bytes it wrote last known); another one
    counts two writes of another scope: the next raise here keeps them, and node.db put back
    from before them is found."""
    _bump(db)
    copy_db(db.path, tmp_path / "copy.db")
    code = (
        "import sys; from pathlib import Path; from troth.storage import SqliteDatabase;"
        "from troth.storage.rollback import RollbackGuard\n"
        "db = SqliteDatabase(Path(sys.argv[1]))\n"
        "for _ in range(2):\n"
        "    with db.transaction(): RollbackGuard(db, 'authority').bump()\n"
        "db.close()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(db.path)], check=True, timeout=60)
    _bump(db)
    assert read_guard(guard_path(db.path)) == {"identity": 2, "authority": 2}
    db.close()
    restore_db(db.path, tmp_path / "copy.db")
    restored = SqliteDatabase(db.path)
    try:
        assert RollbackGuard(restored, "authority").behind()
        assert RollbackGuard(restored, "identity").behind()
    finally:
        restored.close()


def test_another_thread_waits_for_the_turn(db: SqliteDatabase) -> None:
    """The threads of a process share the kept lock file's description, on which a second
    flock succeeds at once: the turn is also a threading lock, so a second thread waits."""
    _bump(db)
    inside, done = threading.Event(), threading.Event()

    def hold() -> None:
        with guard_files(guard_path(db.path), _lock_path(db)).within(5):
            inside.set()
            done.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert inside.wait(5)
        with (
            pytest.raises(StorageError, match="another thread's write"),
            guard_files(guard_path(db.path), _lock_path(db)).within(_TURN_WAIT),
        ):
            pass
    finally:
        done.set()
        holder.join()


def test_a_lock_file_made_again_is_the_one_locked(db: SqliteDatabase) -> None:
    """The lock file this process holds open is deleted and made again (its node made anew,
    an operator's cleanup); another process locks the new one: a turn here waits for it,
    not taken on the old file no one else locks."""
    _bump(db)
    lock = _lock_path(db)
    lock.unlink()
    with lock.open("ab") as other:  # another process's lock of the new file
        fcntl.flock(other, fcntl.LOCK_EX)
        with pytest.raises(StorageError, match="another process's write"):
            _bump(db)
    _bump(db)  # free again: counted
    assert read_guard(guard_path(db.path)) == {"identity": 3}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() of a threaded process
def test_a_forked_child_does_not_take_its_parents_lock(db: SqliteDatabase) -> None:
    """A child forked while its parent is in a turn: a flock on the inherited description
    would be the parent's own (granted at once), and the inherited threading lock held for
    good; the child opens its own files and waits for the parent as another process."""
    _bump(db)
    files = guard_files(guard_path(db.path), _lock_path(db))
    with files.within(5):
        pid = os.fork()
        if pid == 0:  # the child: exit 0 only for the other process's turn refused
            status = 3
            try:
                with guard_files(guard_path(db.path), _lock_path(db)).within(_TURN_WAIT):
                    status = 1
            except StorageError as exc:
                status = 0 if "another process's write" in str(exc) else 2
            finally:
                os._exit(status)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_guard_this_process_may_only_read_fails_its_raise_and_is_not_lowered(
    db: SqliteDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opened to read only (not writable here): a raise is a StorageError naming the guard;
    the guard keeps its count, which the store is ahead of (crash window 2)."""
    _bump(db)
    real_open = os.open

    def refuse_writing(path: object, flags: int, *args: int) -> int:
        if flags & os.O_RDWR and str(path) == str(guard_path(db.path)):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    path = guard_path(db.path)
    path.with_name("again").write_bytes(path.read_bytes())
    os.replace(path.with_name("again"), path)  # the same guard, a new file: opened anew
    monkeypatch.setattr(os, "open", refuse_writing)
    with pytest.raises(StorageError, match=r"node\.db\.guard: Permission denied"):
        _bump(db)
    monkeypatch.undo()
    assert read_guard(guard_path(db.path)) == {"identity": 1}
    assert not RollbackGuard(db, "identity").behind()  # ahead: raised now
    assert read_guard(guard_path(db.path)) == {"identity": 2}


def _guard_fds() -> int:
    """This process's descriptors open on a guard or its lock file."""
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        found += target.endswith((".db.guard", ".db.guard.lock"))
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads /proc/self/fd")
def test_guards_kept_open_are_bounded_and_one_let_go_is_opened_again(tmp_path: Path) -> None:
    """A process raising many nodes' guards (a test run, a host of nodes) keeps at most
    `_KEPT` of them open; one closed to make room is opened again at its next raise."""
    kept = guard_file_module._KEPT
    dbs = [SqliteDatabase(tmp_path / f"n{i}.db") for i in range(3 * kept)]
    try:
        for each in dbs:
            _bump(each)
        assert _guard_fds() <= 2 * kept
        _bump(dbs[0])  # let go long ago
        assert read_guard(guard_path(dbs[0].path)) == {"identity": 2}
        assert _guard_fds() <= 2 * kept
    finally:
        for each in dbs:
            each.close()
