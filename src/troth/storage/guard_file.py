"""The rollback guard's files as a raise uses them, kept open per process (review 58a: each
rotation raises the guard once, and opening, checking and closing the lock file and the guard
(twice) at each raise was most of what counting a rotation cost; troth.storage.rollback).

`with guard_files(path, lock_path).within(timeout):` holds the guard's lock
(`node.db.guard.lock`, flock: the same lock file, and the same exclusion between processes,
as when each raise opened it), and `read` gives the guard's bytes; both files stay open
between raises, in this process only:

- the lock file: a flock belongs to its open file description, which the threads of this
  process share (a second flock on it is granted at once), so a turn also holds `_held`, a
  threading lock, as separate descriptions kept threads apart before. Once locked, the lock's
  path is looked up again (`os.stat`, not following a link): a file held that is no longer
  the one there (deleted, made again with its node) is closed and the path opened again, so
  the turn is taken on the file other processes lock. Held by another process, the turn is
  waited for as before (`Turns`, on a description of its own).
- the guard: under the lock its path is looked up again before each read: a file held that
  is no longer the one there (replaced by a rename, another process's `_create_guard`;
  deleted; a link or anything but a regular file now) is let go and the path opened again,
  as every raise did. The bytes are read anew each time (`pread`: cheaper than any test of
  whether they changed, and a file's times move in ticks of milliseconds, so two writes
  within one would look alike). A guard this process may only read is opened again at each
  raise (it may be writable since).

After a fork, the child does not use what its parent opened (a flock on an inherited
description is the parent's lock, and a threading lock held at the fork stays held in the
child): it closes its copies of them at once (`os.register_at_fork`: a parent killed in a
turn left its flock held for as long as a child it forked lived, review 58k, guard 1), and
opens its own at its first raise (each use still compares `os.getpid()` with the process
that opened them: a fork made outside `os.fork`, by a C library, runs no such handler). At most
`_KEPT` guards are kept open per process: the one kept longest is closed (after any turn in
progress) to make room, and opened again at its next raise.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import threading
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Final

from troth.errors import StorageError
from troth.storage.peers import Turns, _lock_file

__all__ = ["Evicted", "GuardFiles", "guard_files"]

_KEPT: Final = 4
_READ: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
_READ_WRITE: Final = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY


class GuardFiles:
    """One guard's lock file and guard file, kept open by this process (module docstring).
    Used as `with guard_files(...).within(timeout):`, the turn held for the block."""

    def __init__(self, path: Path, lock_path: Path) -> None:
        self.path, self.lock_path = path, lock_path
        # looked up at each raise as text: `os.stat` of a Path converts it each time (~2 k
        # instructions a look-up: review 59c, rotate 4)
        self._path_text, self._lock_text = os.fspath(path), os.fspath(lock_path)
        self._lock = _lock_file(lock_path)  # held (flock) in a turn
        self._lock_id = _identity(os.fstat(self._lock.fileno()))
        self._held = threading.Lock()  # this process's threads, one turn at a time
        self._timeout = 0.0
        # a turn waited for: another description's, as every raise took it before
        self._waited: tuple[Turns, AbstractContextManager[None]] | None = None
        self._fd: int | None = None  # the guard file held (`_current`)
        self._id = (0, 0)  # its st_dev, st_ino
        self._writable = False  # opened to write too
        self.closed = False

    def within(self, timeout: float) -> GuardFiles:
        """This, to hold the guard's lock for a `with` block, waiting for it up to `timeout`
        seconds (the other threads of this process, then the other processes: `Turns`)."""
        self._timeout = timeout
        return self

    def __enter__(self) -> GuardFiles:
        timeout = self._timeout
        if not self._held.acquire(blocking=False) and not self._held.acquire(timeout=timeout):
            raise StorageError(
                f"waited {timeout:g} s for the turn to write ({self.lock_path}): another "
                "thread's write does not end"
            )
        try:
            if self.closed:
                raise Evicted
            try:  # free: taken at once on the description kept, if still the lock file's
                while not self._locked():
                    pass
            except BlockingIOError:  # another process's turn: waited for as every raise did
                turns = Turns(self.lock_path, timeout)
                try:
                    turn = turns.turn()
                    turn.__enter__()
                except BaseException:
                    turns.close()
                    raise
                self._waited = turns, turn
        except BaseException:
            self._held.release()
            raise
        return self

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        waited, self._waited = self._waited, None
        try:
            if waited is None:
                fcntl.flock(self._lock, fcntl.LOCK_UN)
            else:
                try:
                    waited[1].__exit__(None, None, None)
                finally:
                    waited[0].close()
        finally:
            self._held.release()

    def _locked(self) -> bool:
        """Take the lock without waiting (BlockingIOError: another holds it); False when the
        file held is no longer the one at the lock's path (deleted, replaced: its node
        made again), which is opened again (another process takes that one)."""
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            now = _identity(os.stat(self._lock_text, follow_symlinks=False))
        except FileNotFoundError:
            now = None
        except BaseException:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            raise
        if now == self._lock_id:
            return True
        try:  # opened before the old one is let go: never seen closed by another thread's
            # `guard_files` meanwhile, which made a second set and dropped this one, the
            # guard's descriptor open (review 58k, guard 3)
            fresh = _lock_file(self.lock_path)
            fresh_id = _identity(os.fstat(fresh.fileno()))
        except BaseException:
            self._drop()  # the next use makes new ones
            raise
        self._let_go()
        self._lock.close()
        self._lock, self._lock_id = fresh, fresh_id
        return False

    def read(self, limit: int) -> bytes | None:
        """Inside a turn: the guard's bytes (at most `limit`), None when there is none at its
        path or it is not a regular file (a symbolic link, a socket). A guard this process may
        not read is a StorageError (it cannot judge)."""
        fd = self._current()
        return None if fd is None else os.pread(fd, limit, 0)

    def writable(self) -> int:
        """Inside a turn, after `read` found the guard: its descriptor, to write in place;
        PermissionError when this process may only read it (as opening it to write was)."""
        if self._fd is None or not self._writable:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return self._fd

    def _current(self) -> int | None:
        """The descriptor of the file now at the guard's path: the one held if it still is,
        else the path opened again (read and write where this process may write it, read
        only where it may not); None when there is no regular file there."""
        try:
            found = os.stat(self._path_text, follow_symlinks=False)
        except FileNotFoundError:
            self._let_go()
            return None
        except OSError as exc:
            raise StorageError(f"cannot read {self.path}: {exc}") from exc
        if not stat.S_ISREG(found.st_mode):
            self._let_go()
            return None
        if self._fd is not None and self._writable and _identity(found) == self._id:
            return self._fd  # (one opened read only is opened again: it may be writable now)
        self._let_go()
        return self._open()

    def _open(self) -> int | None:
        """The guard's path opened to read and write, else (this process may not write it,
        a read-only file system) to read only; None: nothing there, a symbolic link
        (O_NOFOLLOW), a socket, anything but a regular file."""
        writable = True
        try:
            try:
                fd = os.open(self.path, _READ_WRITE)
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                    raise
                fd, writable = os.open(self.path, _READ), False
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENXIO):
                return None
            raise StorageError(f"cannot read {self.path}: {exc}") from exc
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            os.close(fd)
            return None
        self._fd, self._id, self._writable = fd, _identity(opened), writable
        return fd

    def _let_go(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def close(self) -> None:
        """Close both files (waits for a turn in progress to end: never called in one)."""
        with self._held:
            self._drop()

    def _drop(self) -> None:
        """Close both files now, and a turn's description waited for (`_forget_in_child`)."""
        self.closed = True
        self._let_go()
        self._lock.close()
        if self._waited is not None:
            self._waited[0].close()


def _identity(found: os.stat_result) -> tuple[int, int]:
    return found.st_dev, found.st_ino


class Evicted(Exception):
    """A turn asked of files closed meanwhile (evicted): ask `guard_files` again."""


_state: tuple[int, threading.Lock, dict[Path, GuardFiles]] = (os.getpid(), threading.Lock(), {})


def guard_files(path: Path, lock_path: Path) -> GuardFiles:
    """The files of the guard at `path` (its lock at `lock_path`), kept open by this process
    (a child after a fork opens its own: the parent's descriptors are left to it, never used
    or closed here). Closed files (another thread's `guard_files` evicted them) refuse their
    turn with `Evicted`: ask again."""
    global _state
    pid, lock, kept = _state
    if pid != os.getpid():
        _state = pid, lock, kept = os.getpid(), threading.Lock(), {}
    files = kept.get(path)
    if files is not None and not files.closed:
        return files
    evicted = None
    with lock:
        files = kept.get(path)
        if files is None or files.closed:
            kept.pop(path, None)
            files = kept[path] = GuardFiles(path, lock_path)
            if len(kept) > _KEPT:
                evicted = kept.pop(next(iter(kept)))
    if evicted is not None:
        evicted.close()
    return files


def _forget_in_child() -> None:
    """In a child, just after a fork: close what the parent kept (its descriptions, shared
    with the parent) and keep nothing. The flock of a process killed in a turn is dropped
    only once no process holds its description: a child that lived on held it, and every
    other writer waited out its timeout (review 58k, guard 1). Without a lock taken: the
    parent's threads do not run here."""
    global _state
    for files in _state[2].values():
        files._drop()
    _state = os.getpid(), threading.Lock(), {}


os.register_at_fork(after_in_child=_forget_in_child)
