"""The hard limits of a node's rotation of an identity it holds (troth.node.rotation).

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4: the module is near the 800-line cap).
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_ROTATION_CHAINS"]

MAX_ROTATION_CHAINS: Final = 256
"""Most delegation chains a node's trace log keeps, the newest kept first, that the dating of a
rotation reads for links the identity issued (`troth.trace.signed_until`), and most such links
it verifies: the read runs inside the rotation's write lock on node.db, and read whole, an
authority's log keeping 10,000 chains of its members (each holds its link) took 2 s of it
(review 59m, rotation 1). A link dated after the rotation's clock was kept at most
MAX_CLOCK_SKEW_SECONDS (and any step back of the clock) before it, so among the newest; one
kept before this many newer chains dates nothing (the rotation is dated at the clock; any
member of the log can keep that many chains of its own, and verification then names the record
under the link's chain after a rotation by a clock stepped back: review 59o)."""
