"""The storage part of a floor: one durable write, for operations that must commit once
before they answer (a lease issue, a rotation). Measured, like every floor, beside its subject."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from troth.storage import SqliteDatabase
from troth.storage.sqlite import Durability

ROW_BYTES = 300
"""The size of the floor's row: about one lease, or one rotation's new change."""


class DurableWrite:
    """Each call: one SQLite transaction inserting one ROW_BYTES row into a fresh database at
    `path`, opened with troth's settings (WAL, `synchronous` per `durability`)."""

    def __init__(self, path: Path, *, durability: Durability = "normal") -> None:
        self._db = SqliteDatabase(path, durability=durability)
        self._db.execute("CREATE TABLE rows (id BLOB PRIMARY KEY, body BLOB NOT NULL)")
        self._row = bytes(ROW_BYTES)

    def __call__(self) -> None:
        with self._db.transaction():
            self._db.execute("INSERT INTO rows VALUES (?, ?)", (os.urandom(16), self._row))

    def settle(self) -> None:
        """Checkpoint the floor's WAL (see `settled`)."""
        checkpoint(self._db)

    def close(self) -> None:
        self._db.close()


def checkpoint(db: SqliteDatabase) -> None:
    """Copy `db`'s WAL into its file (a PASSIVE checkpoint, what SQLite's auto-checkpoint runs
    every 1,000 pages written)."""
    db.execute("PRAGMA wal_checkpoint(PASSIVE)")


def settled(batch: Callable[[int], None], settle: Callable[[], None]) -> Callable[[int], None]:
    """`batch` followed by `settle()` in the same timed call: every WAL page a timed batch
    wrote is checkpointed inside its time. Without it the benchmark's minimum over rounds keeps
    the checkpoints of a side that writes many pages per operation (a rotation writes ~7, so
    SQLite checkpoints in every round of 250) and drops those of a side that writes one (a
    checkpoint every 1,000 operations: most rounds of 250 have none), which is no fair
    comparison; with it each side pays for exactly the pages it wrote."""

    def run(k: int) -> None:
        batch(k)
        settle()

    return run
