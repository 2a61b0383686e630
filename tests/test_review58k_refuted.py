"""Review 58k: attacks on the rollback guard's files kept open per process (review 58a) and on
its slot rule (review 58a, guard 2) that did not work (each fails if the defence breaks)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import threading
from pathlib import Path

import pytest

from tests.test_review58a_refuted import _TURN_WAIT, _bump, db
from troth.errors import StorageError
from troth.storage import SqliteDatabase, guard_codec
from troth.storage import guard_file as guard_file_module
from troth.storage import rollback as rollback_module
from troth.storage.guard_file import guard_files
from troth.storage.rollback import (
    SCOPES,
    RollbackGuard,
    decode_store,
    encode_guard,
    guard_path,
    read_guard,
)

__all__ = ["db"]  # the fixture, reused


def _files(directory: Path) -> guard_file_module.GuardFiles:
    path = guard_path(directory / "node.db")
    return guard_files(path, path.with_name(f"{path.name}.lock"))


def test_one_guard_by_two_paths_in_one_process_takes_one_turn(
    db: SqliteDatabase, tmp_path: Path
) -> None:
    """Two nodes of one process whose guards are one file (a directory linked, a bind
    mount): kept apart as two guards, two descriptions of one lock file, whose flocks
    exclude each other even in one process: no two raises at once (one lowering the other)."""
    _bump(db)
    (tmp_path / "alias").symlink_to(tmp_path, target_is_directory=True)
    with (
        _files(tmp_path).within(1),
        pytest.raises(StorageError, match="another process's write"),
        _files(tmp_path / "alias").within(_TURN_WAIT),
    ):
        pass


def test_a_guard_evicted_while_another_thread_raises_is_not_raised_beside_it(
    db: SqliteDatabase, tmp_path: Path
) -> None:
    """A thread in a turn of guard X; another thread opens four other guards (X evicted:
    its files closed once that turn ends); X asked for again meanwhile is opened anew, and
    its turn waits for the first one's (the flock of the description still held)."""
    _bump(db)
    inside, done = threading.Event(), threading.Event()

    def hold() -> None:
        with _files(tmp_path).within(5):
            inside.set()
            done.wait(5)

    others = [tmp_path / f"o{i}" for i in range(guard_file_module._KEPT)]
    for other in others:
        other.mkdir()
    holder = threading.Thread(target=hold)
    evicter = threading.Thread(target=lambda: [_files(other) for other in others])
    holder.start()
    try:
        assert inside.wait(5)
        evicter.start()
        while evicter.is_alive() and guard_path(db.path) in guard_file_module._state[2]:
            evicter.join(0.001)  # until X is out of the kept ones
        with (
            pytest.raises(StorageError, match="another process's write"),
            _files(tmp_path).within(_TURN_WAIT),
        ):
            pass
    finally:
        done.set()
        holder.join()
        evicter.join()
    _bump(db)
    assert read_guard(guard_path(db.path)) == {"identity": 2}


def test_a_link_planted_between_the_lookup_and_the_write_is_not_written_through(
    db: SqliteDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard's path looked up (the file held is still there), then made a symbolic link
    to another file before the write: the write goes to the file held, never through the
    link; the next check reads no guard (fails closed)."""
    _bump(db)
    path, victim = guard_path(db.path), tmp_path / "victim"
    victim.write_bytes(b"untouched")

    def plant(name: str) -> None:
        if name == "storage.rollback-guard.before-write" and not path.is_symlink():
            path.unlink()
            path.symlink_to(victim)

    monkeypatch.setattr(rollback_module, "crash_point", plant)
    _bump(db)
    assert victim.read_bytes() == b"untouched"
    assert RollbackGuard(db, "identity").behind()


def test_a_guard_written_in_place_by_another_is_read_anew(db: SqliteDatabase) -> None:
    """Another writer rewrites the guard in place (the same file, its times maybe unchanged):
    the descriptor kept is read again, never what it held before."""
    _bump(db)
    _bump(db)
    store = decode_store(guard_path(db.path).read_bytes())  # bound (review 64j)
    with guard_path(db.path).open("r+b") as same_file:
        same_file.write(encode_guard({"identity": 2, "authority": 7}, seq=9, store=store))
    _bump(db)
    assert read_guard(guard_path(db.path)) == {"identity": 3, "authority": 7}


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads /proc/self/fd")
def test_a_program_this_process_runs_inherits_no_guard_file(db: SqliteDatabase) -> None:
    """The kept descriptors are not inheritable (O_CLOEXEC): a program run, even with
    close_fds=False (multiprocessing's 'spawn' runs one too), holds neither file."""
    _bump(db)
    listed = subprocess.run(
        ["ls", "-l", "/proc/self/fd/"], close_fds=False, capture_output=True, text=True, check=True
    ).stdout
    assert ".db.guard" not in listed


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() of a threaded process
def test_a_forked_child_releases_nothing_of_its_parents_turn(db: SqliteDatabase) -> None:
    """The child closes its copies of the parent's kept files at the fork (review 58k, guard
    1): closing them must not drop the flock its parent holds in a turn."""
    _bump(db)
    with _files(db.path.parent).within(1):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        lock = guard_path(db.path).with_name("node.db.guard.lock")
        with lock.open("ab") as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_no_downgrade_sequence_drops_a_scope_of_this_troths(tmp_path: Path) -> None:
    """A later troth's version 2 guard full of short scopes of its own (they sort first)
    beside `authority`; this troth counts each of its other scopes in turn: every write keeps
    all of this troth's scopes and decodes (no slot no troth reads), the later ones dropped
    as room runs out."""
    unknown = {f"s{i}": 9 for i in range(8)}
    while not guard_codec._fits([*unknown, "authority"]):
        unknown.popitem()
    db = SqliteDatabase(tmp_path / "node.db")
    try:
        guard_path(db.path).write_bytes(encode_guard({"authority": 2, **unknown}, seq=4))
        with db.transaction():
            db.execute("INSERT INTO rollback_counters (scope, counter) VALUES ('authority', 2)")
        for scope in SCOPES[1:]:
            _bump(db, scope)
            guard = read_guard(guard_path(db.path))
            assert guard is not None
            assert {s: guard.get(s) for s in SCOPES[: SCOPES.index(scope) + 1]} == {
                "authority": 2,
                **dict.fromkeys(SCOPES[1 : SCOPES.index(scope) + 1], 1),
            }
        assert all(RollbackGuard(db, s).check(1, lambda: 0) is None for s in SCOPES)
    finally:
        db.close()
