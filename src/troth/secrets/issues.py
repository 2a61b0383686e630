"""How many leases the broker issues: per member, and in all (review 48o; docs/secrets.md,
"Issue rate").

The quota (`limits.DEFAULT_LEASE_QUOTA`) bounds the leases a member holds open, the denial
budget (troth.secrets.denials) the refusals recorded; neither bounded how often a member allowed
by policy is issued one. A member looping issue and revoke wrote, each round, a lease row kept
30 days after it ended (`ENDED_LEASE_RETENTION`) and about three audit records, as fast as the
broker answered: one member grew the node's database without bound (and a renewal loop wrote a
record each). `IssueBudget` counts every issue and renewal against two token buckets
(troth.rates.ByteBudgets, the node's per-source budgets, in units of one issue): the member's
(`lease_account`: a delegate spends its member's) and the broker's total; one either lacks is
refused SecretError BUSY before anything is read or written (the refusal is not recorded
either). An issue or renewal the book then refuses (nothing written but its denial record,
itself within the denial budget) gives the total back (`refund_total`): members the policy
refuses spend their own budgets only, never the share of those it allows. Like the denial budget
it is held in memory: a restarted broker starts every bucket full. Sans-IO: `now` is passed in;
safe to call from several threads.

`ForwardBudget` counts the requests forwarded with http-inject leases the same way, in buckets
of their own (`limits.LEASE_FORWARD_*`): each writes a `use` record to the append-only audit
log, and none was counted (review 56j, forwards 2: one member wrote as many as the node served
it).
"""

from __future__ import annotations

import threading
from typing import Final

from troth import limits
from troth.errors import SecretError, SecretFailure
from troth.identity import Identifier
from troth.rates import ByteBudgets

__all__ = ["ForwardBudget", "IssueBudget"]

_TOTAL: Final = "total"  # the one source of the broker's total bucket


class IssueBudget:
    """Lease issues per member and in all (module docstring); the defaults are the named
    limits (`limits.LEASE_ISSUE_*`)."""

    _MEMBER_BUSY = "member {} was issued {} leases lately (then {} a second): retry later"
    _TOTAL_BUSY = "the broker issued {} leases lately (then {} a second): retry later"

    def __init__(
        self,
        *,
        burst: int = limits.LEASE_ISSUE_BURST,
        rate: int = limits.LEASE_ISSUE_RATE,
        total_burst: int = limits.LEASE_ISSUE_TOTAL_BURST,
        total_rate: int = limits.LEASE_ISSUE_TOTAL_RATE,
        max_accounts: int = limits.MAX_LEASE_ISSUE_ACCOUNTS,
    ) -> None:
        self.members = ByteBudgets(rate=rate, burst=burst, max_sources=max_accounts)
        self.total = ByteBudgets(rate=total_rate, burst=total_burst, max_sources=1)
        self._lock = threading.Lock()

    def take(self, account: Identifier, now: int) -> None:
        """Spend one issue of `account`'s budget and one of the total; SecretError BUSY,
        nothing spent, when either is empty (or `account` has no bucket: every kept one is in
        use)."""
        with self._lock:
            if not self.members.take(account, 1, now=now):
                raise SecretError(
                    SecretFailure.BUSY,
                    self._MEMBER_BUSY.format(account, self.members.burst, self.members.rate),
                )
            if not self.total.take(_TOTAL, 1, now=now):
                self.members.refund(account, 1, now=now)
                raise SecretError(
                    SecretFailure.BUSY, self._TOTAL_BUSY.format(self.total.burst, self.total.rate)
                )

    def refund_total(self, now: int) -> None:
        """Give back the broker's total one issue (it was refused before anything was written);
        the member's budget stays spent."""
        with self._lock:
            self.total.refund(_TOTAL, 1, now=now)


class ForwardBudget(IssueBudget):
    """Requests forwarded with http-inject leases per member and in all (module docstring); the
    defaults are the named limits (`limits.LEASE_FORWARD_*`)."""

    _MEMBER_BUSY = "member {} had {} requests forwarded lately (then {} a second): retry later"
    _TOTAL_BUSY = "the broker forwarded {} requests lately (then {} a second): retry later"

    def __init__(
        self,
        *,
        burst: int = limits.LEASE_FORWARD_BURST,
        rate: int = limits.LEASE_FORWARD_RATE,
        total_burst: int = limits.LEASE_FORWARD_TOTAL_BURST,
        total_rate: int = limits.LEASE_FORWARD_TOTAL_RATE,
        max_accounts: int = limits.MAX_LEASE_ISSUE_ACCOUNTS,
    ) -> None:
        super().__init__(
            burst=burst,
            rate=rate,
            total_burst=total_burst,
            total_rate=total_rate,
            max_accounts=max_accounts,
        )
