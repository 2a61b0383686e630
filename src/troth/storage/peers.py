"""Who else has a database open: an advisory lock file beside it (docs/secrets.md, "Crash
safety"); and who alone does some work on it (`SoleHolder`).

Every open user of the kind the file is named for (`<database>.brokers`: the brokers) holds a
shared flock(2) on it while it is open. `alone()` tries, without waiting, to hold it exclusively:
that succeeds only when no other user is open, in this process or another. A process that died,
even by SIGKILL, holds nothing: the kernel drops its locks with its file descriptors. A flock
lock belongs to an open file description, so every `PeerLock` opens the file itself and two of
them in one process conflict as two processes would.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from troth.errors import StorageError

__all__ = ["PeerLock", "SoleHolder"]


class PeerLock:
    """A shared hold on `path` (created 0600) from construction to `close()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file = open(  # noqa: SIM115 (held until close(), or closed when collected)
                path, "ab", buffering=0, opener=lambda p, flags: os.open(p, flags, 0o600)
            )
        except OSError as exc:
            raise StorageError(f"cannot open {path}: {exc}") from exc
        try:
            # waits only while a peer is inside `alone()`
            fcntl.flock(self._file, fcntl.LOCK_SH)
        except BaseException:
            self._file.close()
            raise

    @contextmanager
    def alone(self) -> Iterator[bool]:
        """True (the lock held exclusively for the block: no peer is open, none can open until
        it ends) or False (another peer is open). Shared again afterwards."""
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # flock(2): a conversion is not atomic and a refused one leaves no lock at all
            fcntl.flock(self._file, fcntl.LOCK_SH)
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(self._file, fcntl.LOCK_SH)

    def close(self) -> None:
        """Release the hold (the kernel drops the lock with the file)."""
        self._file.close()


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
        try:
            file = open(  # noqa: SIM115 (held until close())
                self.path, "ab", buffering=0, opener=lambda p, flags: os.open(p, flags, 0o600)
            )
        except OSError as exc:
            raise StorageError(f"cannot open {self.path}: {exc}") from exc
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            return False
        except BaseException:
            file.close()
            raise
        self._file = file
        return True

    def close(self) -> None:
        """Let the lock go (if held)."""
        file, self._file = self._file, None
        if file is not None:
            file.close()
