"""WAL checkpoints of a trace log off its commit path.

In WAL mode SQLite copies the write-ahead log back into the database file (a checkpoint) in
the connection whose COMMIT made the log pass `wal_autocheckpoint` pages (1,000 by default):
that commit's leader, and every record waiting on it, waited for ~1,000 pages to be written
and the database file fsynced (5-25 ms on this machine's disk, against ~0.3-1.5 ms for a
commit). A `WalCheckpointer` runs PASSIVE checkpoints (SQLite's "checkpoint as many frames as
possible without waiting for any database readers or writers", sqlite.org/pragma.html
#pragma_wal_checkpoint) from a thread of its own every `every` records, so the commits go on
meanwhile. The leaders' auto-checkpoint stays as it was and catches up what is left when the
log's commits never leave the checkpointer a pause (then it has little to copy). Nothing here
changes what is durable when: a commit is fsynced in the WAL before it is acknowledged, and a
checkpoint only moves committed pages.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from typing import Final

from troth.errors import StorageError
from troth.storage import SqliteDatabase

__all__ = ["WalCheckpointer"]

CHECKPOINT_EVERY: Final = 512
"""Records appended between two background checkpoints (~200-500 WAL pages)."""


class WalCheckpointer:
    """Background PASSIVE checkpoints of `store`'s WAL, started by `appended` (a commit
    leader's call, under the log's lead) and stopped by `stop`."""

    def __init__(self, store: SqliteDatabase, *, every: int = CHECKPOINT_EVERY) -> None:
        self._store = store
        self._every = every
        self._since = 0
        self._due = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.busy = threading.Lock()
        """Held while a checkpoint runs (a TRUNCATE checkpoint in this process waits for it)."""

    def appended(self, count: int) -> None:
        """`count` records were committed: wake the checkpointer every `every` records."""
        self._since += count
        if self._since < self._every or self._stopping:
            return
        self._since = 0
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"troth-wal-{self._store.path.name}", daemon=True
            )
            self._thread.start()
        self._due.set()

    def stop(self) -> None:
        """End the checkpointer's thread (after the checkpoint it is running, if any)."""
        self._stopping = True
        self._due.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        try:
            conn = self._store.dedicated()
        except StorageError:  # (the leaders' auto-checkpoint still runs)
            return
        while True:
            self._due.wait()
            self._due.clear()
            if self._stopping:
                return
            # (failing, it leaves the checkpoint to the leaders' auto-checkpoint)
            with self.busy, contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
