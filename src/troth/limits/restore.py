"""The hard limits of dating a restore of node.db by its rollback guard (troth.storage.rollback,
troth.identity.restored, troth.node.release).

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4: the module is near the 800-line cap).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "MAX_ROLLBACK_GUARD_BOUND_BYTES",
    "MAX_ROLLBACK_RAISED_AT",
    "RESTORE_ROTATION_MARGIN_SECONDS",
    "ROLLBACK_STORE_ID_BYTES",
]

MAX_ROLLBACK_GUARD_BOUND_BYTES: Final = 512
"""The size of a rollback guard file of version 4 (bound to its node.db by a store id: review
64j, rollback 1): two slots of 256 bytes (docs/formats.md, "Rollback guard": the four scopes'
largest counts, `identity`'s raise time and the id take 125 bytes of CBOR, over the 110 a
128-byte slot holds). Read beside `MAX_ROLLBACK_GUARD_BYTES` (versions 1 to 3)."""
ROLLBACK_STORE_ID_BYTES: Final = 16
"""Size of a node.db's store id (random, made with its first guarded write), which a version 4
rollback guard names (review 64j, rollback 1)."""

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
