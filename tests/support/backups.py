"""A node's database copied and put back, as an operator's backup and restore would (review 50g:
a stolen or restored backup replaying old-but-genuine state)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path


def node_db(home: Path, name: str) -> Path:
    """Node `name`'s database under the troth home `home`."""
    return home / "nodes" / name / "node.db"


def copy_db(path: Path, to: Path) -> None:
    """A consistent copy of the SQLite database at `path` (SQLite's online backup)."""
    source, copy = sqlite3.connect(path), sqlite3.connect(to)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()


def restore_db(path: Path, copy: Path) -> None:
    """Put `copy` back as the database at `path` (its write-ahead log and index gone)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copy(copy, path)
