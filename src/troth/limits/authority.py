"""The hard limits of a hosted authority's service: how many enroll and refresh requests one
source may send it (troth.authority.budgets, `/service/authority`; docs/credentials.md,
"Request budgets").

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ENROLL_REQUESTS_BURST",
    "ENROLL_REQUEST_SECONDS",
    "FEED_PAGE_SIGNS_PER_TICKET",
    "MAX_ENROLL_REQUEST_SOURCES",
    "REDEMPTION_GRACE_SECONDS",
]

ENROLL_REQUESTS_BURST: Final = 32
"""Enroll and refresh requests one source may send a hosted authority's service at once, then
one per ENROLL_REQUEST_SECONDS (review 56g, budgets 1): a member (its delegates with it: the
member at the root of the caller's chains from that authority), or anyone else by the network
its channel came from (an IPv4 /24, an IPv6 /48; a sender behind a relay by the network its
relay's host tag names: review 56m, relayed budgets 1). Past it a request is refused
(`AuthorityFailure.RATE_LIMITED`) before its signature is checked. Callers on the node's own
machine are not counted."""
ENROLL_REQUEST_SECONDS: Final = 4
"""Seconds one enroll or refresh request of a source's budget takes to refill (15 a minute)."""
FEED_PAGE_SIGNS_PER_TICKET: Final = 5
"""Feed pages a hosted authority signs per second on request for the members one ticket of many
uses enrolled (and their delegates), all together (burst 2 s of it): a quarter of the pool its
members and anchors share (`FEED_PAGE_SIGNS_PER_NODE`), on top of each member's own budget
(`FEED_PAGE_SIGNS_PER_CALLER`), so one ticket's fleet leaves three quarters of it to everyone
else (review 71p, pools 1: each of them drew on the pool as a member of its own, and five spent
its burst). A single-use ticket's member is charged its own budget only."""
MAX_ENROLL_REQUEST_SOURCES: Final = 4096
"""Sources whose enroll and refresh budget a hosted authority keeps at once, per class (its
members; everyone else): refilled budgets are forgotten first, then the oldest (it starts
again with a full budget), so no number of sources leaves a new one refused."""
REDEMPTION_GRACE_SECONDS: Final = 30 * 24 * 3600
"""How long past its ticket's expiry a hosted authority keeps a redemption (the credential it
issued for it), so that its member's late repeat of the enrollment is answered as its refresh
would be (a holder resumes for a week: `RESUME_FOR`); then it is deleted with the expired
tickets (review 56g, redemptions 1). The ticket itself is deleted at its expiry: its code is
never redeemable again either way."""
