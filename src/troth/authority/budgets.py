"""Per-source budgets of a hosted authority's enroll and refresh requests (docs/credentials.md,
"Request budgets"; review 56g, budgets 1).

Each request is checked in full (a signature, the requester's history, store reads; a refresh
signs a credential and writes a row), and the node's concurrency caps bounded only how many ran
at once: a stranger (an identity costs nothing) could send enroll requests with made-up ticket
codes without end, a member refresh in a loop. The node's authority service charges each one
to its source before anything is checked: ENROLL_REQUESTS_BURST at once, then one per
ENROLL_REQUEST_SECONDS (`troth.rates.ByteBudgets`, in units of a second). Members and anyone
else are kept apart, MAX_ENROLL_REQUEST_SOURCES each, so no number of strangers pushes a
member's budget out; past the bound a class forgets its refilled budgets, then its oldest.
Sans-IO: the caller names the source and passes `now`.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

from troth import limits
from troth.errors import AuthorityError, AuthorityFailure
from troth.rates import ByteBudgets

__all__ = ["RequestBudgets"]


def _class() -> ByteBudgets:
    seconds = limits.ENROLL_REQUEST_SECONDS
    return ByteBudgets(
        rate=1,
        burst=limits.ENROLL_REQUESTS_BURST * seconds,
        max_sources=limits.MAX_ENROLL_REQUEST_SOURCES,
        evict=True,
    )


class RequestBudgets:
    """The enroll and refresh budgets of a hosted authority's callers (thread-safe)."""

    def __init__(self) -> None:
        self._members = _class()
        self._others = _class()
        self._lock = threading.Lock()

    def charge(self, source: Hashable, *, member: bool, now: int) -> None:
        """Spend one request of `source`'s budget (`member`: one of the authority's members,
        else anyone else) at `now`; AuthorityError RATE_LIMITED, nothing spent, past it."""
        budgets = self._members if member else self._others
        with self._lock:
            if budgets.take(source, limits.ENROLL_REQUEST_SECONDS, now=now):
                return
        raise AuthorityError(
            AuthorityFailure.RATE_LIMITED,
            f"at most {limits.ENROLL_REQUESTS_BURST} at once, then one per "
            f"{limits.ENROLL_REQUEST_SECONDS} s (ENROLL_REQUESTS_BURST)",
        )
