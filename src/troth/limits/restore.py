"""The hard limits of dating a restore of node.db by its rollback guard (troth.storage.rollback,
troth.identity.restored, troth.node.release).

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4: the module is near the 800-line cap).
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_ROLLBACK_RAISED_AT", "RESTORE_ROTATION_MARGIN_SECONDS"]

MAX_ROLLBACK_RAISED_AT: Final = (1 << 32) - 1
"""Latest time (Unix seconds, the year 2106) a rollback guard's version 3 slot holds as when a
scope was last raised (docs/formats.md, "Rollback guard"): at it, every scope's largest count
and `identity`'s raise time fit a 128-byte slot (108 bytes of CBOR of 110). A later clock is
written as this (review 60a, release 1)."""
RESTORE_ROTATION_MARGIN_SECONDS: Final = 10
"""How long after the last rotation node.db's rollback guard saw (its `identity` scope's raise
time) a held feed must be issued to count as evidence for the release of a restore's hold
(troth.node.release): a page signed within it may precede the rotation's announcement (sent
after the rotation commits) or come from an authority whose clock runs a little ahead of the
node's (review 60a, release 1: a page captured a second before the rotation, dated a second
after it, replayed once the hold was found, released the rotated identity)."""
