"""Who else has a database open: an advisory lock file beside it (docs/secrets.md, "Crash
safety").

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

from troth.errors import StorageError

__all__ = ["PeerLock"]


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
