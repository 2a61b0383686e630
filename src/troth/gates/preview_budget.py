"""Per-member budgets of preview work (docs/policy.md, "Preview budgets"; review 55n, preview 1).

Gate 1's preview of a chain an engine has not cached partially evaluates the bundle's policies
(and the chain's caveats) once per tool: at MAX_TOOLS tools and one permit each, ~5 s of CPU
with the GIL held. A member mints delegates for free, each a chain of its own, so one member
could stall the node for seconds per delegate. An uncached preview is charged to the chain's
member — its authority and the subject of its root link, so a member's delegates share its
budget, as the node's other per-member limits count them (`troth.node.access.member_accounts`)
— in units of one policy in one tool's evaluation, PREVIEW_WORK_BURST at once refilled at
PREVIEW_WORK_RATE a second (`troth.rates.ByteBudgets`). Past it the preview is refused; other
members keep their own budgets.
"""

from __future__ import annotations

import threading

from troth import limits
from troth.credentials import VerifiedCredential
from troth.rates import ByteBudgets

__all__ = ["PreviewBudgets"]


class PreviewBudgets:
    """The preview budgets of one engine's callers, by member (thread-safe)."""

    def __init__(self) -> None:
        self._budgets = ByteBudgets(
            rate=limits.PREVIEW_WORK_RATE,
            burst=limits.PREVIEW_WORK_BURST,
            max_sources=limits.MAX_PREVIEW_SOURCES,
        )
        self._lock = threading.Lock()

    def charge(self, credential: VerifiedCredential, work: int, *, now: int) -> bool:
        """Spend `work` of the budget of `credential`'s member at `now`; False (nothing spent)
        when it lacks it. Work past the burst needs the whole budget and leaves it owing."""
        member = (credential.authority.digest, credential.links[0].subject.digest)
        first = min(work, self._budgets.burst)
        with self._lock:
            if not self._budgets.take(member, first, now=now):
                return False
            if work > first:
                self._budgets.owe((member,), work - first, now=now)
        return True
