"""Until when an identity signed what a node's trace log holds: the time of its newest record
there, and, for the log's own identity, of the log's newest checkpoint (docs/formats.md,
"Signatures outlive rotations"). A rotation the node makes of an identity it holds is dated no
earlier (`troth.node.rotation`): a record may be dated up to 300 s ahead of the log, and a
rotation dated before it retires the record's key before the record by the rule, so every
later verification of the log named the record `signed by a key after its retirement`, though
its key was current when it entered the log (review 58c, trace 3; review 59b, trace 2 for the
log identity's checkpoints).

Read with a read-only connection of its own: a node that holds no log is not given one, and a
log that cannot be read (damaged, another format, locked past a short wait) answers None, so
nothing here can refuse a rotation (a compromised key must always be rotatable).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

__all__ = ["signed_until"]

_NEWEST: Final = (
    "SELECT max(t) FROM ("
    "SELECT time AS t FROM agents WHERE agent = ?1 "
    "UNION ALL SELECT (SELECT time FROM checkpoints ORDER BY size DESC LIMIT 1) "
    "WHERE EXISTS (SELECT 1 FROM meta WHERE name = 'log_identity' AND value = ?1))"
)
"""The agent's head (`agents`: the time of its newest record, times never decreasing along
its chain) and, when the identity is the log's, its newest checkpoint (never dated before an
earlier one): two primary-key look-ups and one of `meta`, however long the log."""
_WAIT_SECONDS: Final = 0.05
"""How long the read waits for a lock (a WAL reader rarely does): it runs inside the
rotation's write lock on node.db, and a log not read in time dates nothing."""


def signed_until(log: Path, identifier: bytes) -> int | None:
    """The time of the newest record signed by identity `identifier` (its 32-byte digest) in
    the trace log at `log`, or of the log's newest checkpoint if it is the log's identity,
    whichever is later; None when there is none, no file, or the file cannot be read."""
    if not log.is_file():
        return None
    try:
        conn = sqlite3.connect(
            f"{log.absolute().as_uri()}?mode=ro", uri=True, timeout=_WAIT_SECONDS
        )
        try:
            row = conn.execute(_NEWEST, (identifier,)).fetchone()
        finally:
            conn.close()
        return None if row is None or row[0] is None else int(row[0])
    except (sqlite3.Error, ValueError, TypeError, OverflowError):
        return None
