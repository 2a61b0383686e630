"""The hard limits of a node's rotation of an identity it holds (troth.node.rotation).

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4: the module is near the 800-line cap).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ISSUED_LINKS_CATCH_UP",
    "MAX_OUTBOX_SIGNER_RENEWALS",
    "MAX_ROTATION_CHAINS",
    "MAX_ROTATION_RESIGNED_RECORDS",
]

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

MAX_ROTATION_RESIGNED_RECORDS: Final = 4096
"""Most queued trace records of an agent (its node's outbox) that a rotation of it signs again
with the new key, in its transaction, holding node.db's write lock (troth.trace.outbox_rotation):
the rest of the key's rows are listed in a ticket the new key signs, and the outbox signs them
again as they come up (troth.trace.outbox_tickets; review 71g, outbox2 1: the rotation was
refused OVER_LIMIT, every routine rotation while a trace service was out of reach). A
full outbox (TRACE_OUTBOX_RECORDS) took about 45 s to sign again with a software key (0.7 ms a
row), minutes on a token, every other writer of node.db failing past its busy timeout
meanwhile; 4,096 take about 3 s (review 70b, outbox 3)."""

MAX_OUTBOX_SIGNER_RENEWALS: Final = 4
"""Most times a trace outbox asks its signer source again, in one signing of its records
(troth.trace.outbox, `TraceOutbox._signing`), because a rotation elsewhere signed again (or
retired the key of) the rows its transaction read: each time only while the answer is a newer
change of the agent than the one before, so each needs a rotation committed meanwhile; past
it, or at an answer no newer, the rows of a change the signer does not hold are set aside
(review 70o, outbox2 2: asked again once, a second rotation just after had the agent's honest
rows set aside)."""
