"""One mark due a sync (`CredentialStore.mark_sync_due`) forgotten in a node's store by its
path, which is never made: a revocation here marked the other nodes' stores and closed them
(troth.node.localdue), and forgets its marks if the authority refused it. `SqliteDatabase`
makes a missing file: a store removed meanwhile was made again, empty (review 70m, telling2
1)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from troth.errors import StorageError

__all__ = ["forget_mark_at"]

_FORGET = (
    "DELETE FROM feed_syncs_due WHERE id = ? AND authority = ? AND address = ? AND marked_at = ?"
)


def forget_mark_at(
    path: Path, authority: bytes, mark: int, *, address: str, marked_at: int, wait: float
) -> bool:
    """Delete mark `mark` of `authority` from the node.db at `path` if it is the one made
    (its address and time too: a store made again under that path numbers its own marks from
    1 as well); whether it was there. No file at `path`: False, nothing made. StorageError when
    the store cannot be opened or written within `wait` seconds."""
    if not path.is_file():
        return False
    try:  # mode=rw: SQLite opens the file only if it exists (a removal since the check too)
        conn = sqlite3.connect(
            f"{path.absolute().as_uri()}?mode=rw", uri=True, timeout=wait, isolation_level=None
        )
    except sqlite3.Error as exc:
        if not path.exists():
            return False
        raise StorageError(f"cannot open {path}: {exc}") from exc
    try:
        return conn.execute(_FORGET, (mark, authority, address, marked_at)).rowcount > 0
    except sqlite3.Error as exc:
        raise StorageError(f"{path}: {exc}") from exc
    finally:
        conn.close()
