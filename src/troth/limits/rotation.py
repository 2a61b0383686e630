"""The hard limits of a node's rotation of an identity it holds (troth.node.rotation).

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4: the module is near the 800-line cap).
"""

from __future__ import annotations

from typing import Final

__all__ = ["ISSUED_LINKS_CATCH_UP", "MAX_ROTATION_CHAINS"]

MAX_ROTATION_CHAINS: Final = 256
"""Most delegation chains a node's trace log keeps, the newest kept first, that the dating of a
rotation searches for links the identity issued (`troth.trace.signed_until`), and most such
links it verifies, where the log's `issued_links` (`troth.trace.issued_links`) does not answer:
the chains kept after its mark (kept before the table, or by an older troth, and not yet
noted), or all of them when the identity's row there does not verify (review 60b, rotation 1).
The search runs inside the rotation's write lock on node.db, and read whole, an authority's log
keeping 10,000 chains of its members (each holds its link) took 2 s of it (review 59m, rotation
1). A link kept before this many newer chains and not noted dates nothing (the rotation is
dated at the clock): any member of the log can keep that many chains of its own (review 59o),
which `issued_links` answers."""

ISSUED_LINKS_CATCH_UP: Final = 64
"""Most chains kept before `issued_links`'s mark (by a log before review 60b, or an older troth)
that an append keeping a chain notes there, the oldest first, in its transaction: a log keeping
10,000 chains is noted whole by its next 160 or so kept chains, each append paying for 64
decodes (measured here: about 40 ms for chains of 9 links, the most, a few ms for chains of
one), rather than one append paying for all 10,000 (review 60b, rotation 1)."""
