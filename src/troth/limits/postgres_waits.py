"""The hard limits of the watcher of a postgres revocation's statements
(troth.secrets.engines.postgres_waits; review 72q, savepoint 1; review 72u, watcher 2).

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4: the module is near the 800-line cap).
"""

from __future__ import annotations

from typing import Final

__all__ = ["POSTGRES_WATCH_POLL_MS", "POSTGRES_WATCH_START_DIVISOR"]

POSTGRES_WATCH_START_DIVISOR: Final = 20
"""The watcher of a revocation's statements in a database connects (a second admin session)
once they have run the lock timeout they may wait (`POSTGRES_LOCK_TIMEOUT_MS`) divided by this
(250 ms of 5 s): far past most (under 100 ms), far before a waiting one fails; it follows the
lock timeout, so a lower one is watched as early in its wait."""
POSTGRES_WATCH_POLL_MS: Final = 20
"""Milliseconds between two looks of the watcher at the statement's session (whether it waits on
a transaction or a row another session queued for: `pg_stat_activity`, then pg_locks)."""
