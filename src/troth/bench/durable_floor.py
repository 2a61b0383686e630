"""The storage part of a floor: one durable write, for operations that must commit once
before they answer (a lease issue, a rotation). Measured, like every floor, beside its subject."""

from __future__ import annotations

import os
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

    def close(self) -> None:
        self._db.close()
