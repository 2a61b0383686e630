"""Who else has a database open: an advisory lock file beside it (docs/secrets.md, "Crash
safety"); who alone does some work on it (`SoleHolder`); and whose turn it is to write it
(`Turns`).

Every open user of the kind the file is named for (`<database>.brokers`: the brokers) holds a
shared flock(2) on it while it is open. `alone()` tries, without waiting, to hold it exclusively:
that succeeds only when no other user is open, in this process or another. A process that died,
even by SIGKILL, holds nothing: the kernel drops its locks with its file descriptors. A flock
lock belongs to an open file description, so every `PeerLock` opens the file itself and two of
them in one process conflict as two processes would.

flock(2) converts a lock in two steps (the old lock removed, then the new one taken), and a
refused conversion leaves no lock at all: until the shared lock is taken again, the user holds
nothing, and another user's conversion found no one open (review 47j, peers 1-2: `troth vault
rekey` ran in full while an open of the node was settling). So `alone()` converts only while
holding a second lock file, the gate (`<lock>.gate`), exclusively: taken without waiting before
the conversion, and held until the shared lock is back (through the block when it succeeded). A
user that finds the gate held answers no at once: its holder is open (it held the lock shared to
get there). So no user is ever alone while another is open, and none waits on the gate; an open
takes only the lock, shared, and waits only while a user is alone.
"""

from __future__ import annotations

import fcntl
import os
import stat
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Final

from troth.errors import StorageError

__all__ = ["PeerLock", "SoleHolder", "Turns"]


class PeerLock:
    """A shared hold on `path` (created 0600) from construction to `close()`; `alone()` also
    takes `<path>.gate` (created 0600; module docstring). With `wait`, the shared hold is
    waited for at most that many seconds (a peer alone with it past them: StorageError).
    `gated=False`: a hold that is never alone (`alone()` refused) keeps one descriptor, not
    two (a revocation here holds one of every node it marked: review 70d, telling 2)."""

    def __init__(self, path: Path, *, wait: float | None = None, gated: bool = True) -> None:
        self.path = path
        self.gate = path.with_name(f"{path.name}.gate")
        self._file = _lock_file(path)
        try:
            self._gate = _lock_file(self.gate) if gated else None
        except BaseException:
            self._file.close()
            raise
        _KEPT_LOCKS.add(self)  # before the hold, which may wait: a child forked meanwhile
        # kept the open file, so the hold taken then (review 58s, locks 1)
        try:
            # waits only while a peer is inside `alone()`, and alone
            if wait is None:
                fcntl.flock(self._file, fcntl.LOCK_SH)
            else:
                _shared_within(self._file, path, wait)
        except BaseException:
            self.close()
            raise

    @contextmanager
    def alone(self) -> Iterator[bool]:
        """True (the lock held exclusively for the block: no peer is open, none can open until
        it ends) or False (another peer is open). Shared again afterwards. Never waits.
        StorageError once closed (in a child forked since too: its copies are closed, review
        58s, locks 2)."""
        if self._gate is None:
            raise StorageError(f"{self.path} is held by one never alone with it")
        if self._gate.closed:
            raise StorageError(f"{self.path} is not held open in this process")
        try:
            fcntl.flock(self._gate, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # a peer is converting (or alone with its lock exclusive, impossible while this one
            # holds its lock shared): it is open, so this one is not alone
            yield False
            return
        try:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                # flock(2): a refused conversion leaves no lock at all. Taken again under the
                # gate, so no peer converts meanwhile; never waits (no peer holds it exclusive:
                # one would have to convert, and this one held it shared until now)
                fcntl.flock(self._file, fcntl.LOCK_SH)
                alone = False
            else:
                alone = True
            if alone:
                try:
                    yield True
                finally:  # a conversion too: the gate is held until it is done
                    fcntl.flock(self._file, fcntl.LOCK_SH)
        finally:
            fcntl.flock(self._gate, fcntl.LOCK_UN)
        if not alone:
            yield False  # the gate let go: a peer's conversion is refused by this one's hold

    def held_at_path(self) -> bool:
        """Whether the file at `path` (not followed) is still the one this hold is on: False
        once it was removed or replaced (its directory removed and made again: a new node of
        the same name), or the hold closed. The file held cannot be freed meanwhile, so its
        number is never another file's (review 70m, telling2 1)."""
        try:
            held = os.fstat(self._file.fileno())
            found = os.stat(self.path, follow_symlinks=False)
        except (OSError, ValueError):  # (gone; ValueError: the hold closed)
            return False
        return (held.st_dev, held.st_ino) == (found.st_dev, found.st_ino)

    def close(self) -> None:
        """Release the hold (the kernel drops the locks with the files)."""
        if self._gate is not None:
            self._gate.close()
        self._file.close()

    def _forget(self) -> None:
        self.close()  # a child's copies: the parent's hold stays


class SoleHolder:
    """An exclusive flock(2) on `path` (created 0600), taken without waiting by `take()` and
    held until `close()`: of the users of one database, one at a time does the work the file
    is named for (`<node.db>.trace-outbox`: sending the trace outbox). The kernel drops it
    with the process, even on SIGKILL."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._file is not None

    def take(self) -> bool:
        """Hold the lock if no one else does; whether this object holds it now."""
        if self._file is not None:
            return True
        file = _lock_file(self.path)
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            return False
        except BaseException:
            file.close()
            raise
        self._file = file
        _KEPT_LOCKS.add(self)
        return True

    def close(self) -> None:
        """Let the lock go (if held)."""
        file, self._file = self._file, None
        if file is not None:
            file.close()

    def _forget(self) -> None:
        self.close()  # a child's copy: the parent holds it still


class Turns:
    """Whose turn it is to write a database, across processes: an exclusive flock(2) on `path`
    (created 0600) held for the length of a `turn()`. SQLite's write lock alone keeps writers
    apart but wakes a waiting one only by sleeping and trying again (its busy handler sleeps 1,
    2, 5, 10 ms ...), so a process waiting behind another's millisecond commit slept for several:
    this lock is polled every `_POLL_FIRST` s at first (doubling up to `_POLL_MAX`), so the next
    writer starts within about a millisecond of the last one's release. Past `timeout` seconds a
    StorageError (as SQLite's busy timeout). A writer that died holds nothing (the kernel drops
    its locks once no process holds its open file: a child forked from it closes its copy at
    once, and opens its own at its first turn: review 58, lead, turns 1, where a child that
    lived on kept a writer killed in a turn holding it, and a child's turn was its parent's);
    a turn is not re-entrant."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path, self.timeout = path, timeout
        self._file: BinaryIO | None = _lock_file(path)
        self._closed = False
        _KEPT_LOCKS.add(self)

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the lock for the block (waiting for it up to `timeout` seconds)."""
        if self._closed:
            raise StorageError(f"the turns of {self.path} are closed")
        if self._file is None:  # forked: this process's own open file
            self._file = _lock_file(self.path)
        file = self._file
        delay, deadline = _POLL_FIRST, None
        while True:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                now = time.monotonic()
                deadline = now + self.timeout if deadline is None else deadline
                if now >= deadline:
                    raise StorageError(
                        f"waited {self.timeout:g} s for the turn to write ({self.path}): another "
                        "process's write does not end"
                    ) from None
                time.sleep(min(delay, deadline - now))
                delay = min(delay * 2, _POLL_MAX)
        try:
            yield
        finally:
            if self._file is file:  # (a child forked in the turn: its copy closed, nothing
                fcntl.flock(file, fcntl.LOCK_UN)  # held; review 58s, locks 2)

    def close(self) -> None:
        """Close the lock file (a turn held is dropped with it)."""
        self._closed = True
        self._forget()

    def _forget(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()


_KEPT_LOCKS: Final[weakref.WeakSet[PeerLock | SoleHolder | Turns]] = weakref.WeakSet()
"""The lock files this process keeps open: a child forked from it closes its copies at once
(`_forget_in_child`)."""


def _forget_in_child() -> None:
    """In a child just after a fork: close the copies of every lock file kept open (closing a
    copy releases nothing of the parent's; its threads do not run here). The kernel drops a
    flock only once no process holds its open file: a child that lived on kept the locks of a
    parent killed holding them, a trace writer's turn, the trace outbox's sender, node.db's
    shared hold (no broker recovery while it lived; review 58, lead, turns 1)."""
    for kept in list(_KEPT_LOCKS):
        kept._forget()


os.register_at_fork(after_in_child=_forget_in_child)

_POLL_FIRST: Final = 0.0001
_POLL_MAX: Final = 0.001


def _shared_within(file: BinaryIO, path: Path, wait: float) -> None:
    """Hold `file` shared, tried without blocking until `wait` seconds passed (flock(2) has no
    timeout of its own): StorageError past them."""
    deadline = time.monotonic() + wait
    pause = 0.001
    while True:
        try:
            fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise StorageError(f"{path} is held alone by a peer past {wait} s") from None
            time.sleep(min(pause, left))
            pause = min(2 * pause, 0.05)


def _lock_file(path: Path) -> BinaryIO:
    """`path` opened (created 0600) for a flock held until its user closes it: a regular file,
    opened without waiting and not through a symbolic link, else StorageError (a FIFO planted
    there hung every open of the node; an O_CREAT through a dangling link made a file wherever
    it pointed: review 46h, rekey 2)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise StorageError(f"cannot open {path}: {exc}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StorageError(f"{path} is not a regular file: remove it")
        os.set_blocking(fd, True)
        return open(fd, "ab", buffering=0)  # held until its user closes it
    except BaseException:
        os.close(fd)
        raise
