"""The sweep's budgets for upstream revocations (docs/secrets.md, "Crash safety"): first
attempts and retries, each its own.

A revocation that failed is retried with a backoff per lease (troth.secrets.book,
`revoke_backoff`), but many stuck leases still add up: each attempt may cost the broker's
thread the engine's lock timeout. So one sweep tries at most `MAX_SWEEP_RETRIES` retries and
starts none once `SWEEP_RETRY_SECONDS` of engine time went to them; an attempt that overran
(one lock timeout is longer) is charged to the following sweeps, so over time retries take at
most that much engine time a sweep. The due retries are taken in turn across accounts (one of
each account's, then a second of each, ...), the accounts with the fewest due retries first:
one account's stuck leases never go before another account's revocation (review 45i,
secrets 1). A retry not tried stays due (its lease REVOKING, counted in its quota); the next
sweep takes it, the longest due first.

First attempts (leases that expired, PENDING ones aborted, revocations never tried) are
budgeted the same way with their own allowance (`MAX_SWEEP_FIRST_ATTEMPTS`,
`SWEEP_FIRST_SECONDS`), in turn across accounts: a burst of leases expiring at once (10,000
of them, each an upstream round trip) made one sweep try them all, however long that took,
in expiry order (review 46d, secrets 2). A first attempt not tried stays due (REVOKING, never
tried) for the next sweeps; retries keep their own allowance, so a burst never starves them.

A revocation batch (a feed's, an operator's: `Broker.revoke_for_feed`, `revoke_identity`,
removing a secret) has a budget of its own, `BATCH_REVOKE_SECONDS`, fresh for each batch: a
server that stopped answering cost a connect timeout per lease in turn (review 50c, batches
1). The leases a batch did not try are REVOKING, committed before any engine call: the first
attempts of the next sweeps, after a crash too.

The orphan sweep (troth.secrets.orphans) has a third allowance of its own, in upstream calls
(`MAX_SWEEP_ORPHANS`) and engine time (`SWEEP_ORPHAN_SECONDS`; review 49e, orphans 1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, TypeVar

from troth.secrets.lease import Lease

__all__ = [
    "BATCH_REVOKE_SECONDS",
    "MAX_SWEEP_FIRST_ATTEMPTS",
    "MAX_SWEEP_ORPHANS",
    "MAX_SWEEP_RETRIES",
    "ORPHAN_RETRY_MAX",
    "ORPHAN_SWEEP_SECONDS",
    "SWEEP_FIRST_SECONDS",
    "SWEEP_ORPHAN_SECONDS",
    "SWEEP_RETRY_SECONDS",
    "Due",
    "RetryBudget",
    "fair_order",
]

MAX_SWEEP_RETRIES: Final = 32
"""Retried upstream revocations (leases whose revocation failed before) one sweep tries at
most (first attempts have their own budget, `MAX_SWEEP_FIRST_ATTEMPTS`)."""
SWEEP_RETRY_SECONDS: Final = 0.5
"""Seconds of engine time one sweep spends on retried revocations (averaged over the sweeps:
an overrun is charged to the next ones). With the served broker's sweep every 5 s, retries
take at most ~10% of the broker's thread however many leases are stuck."""
MAX_SWEEP_FIRST_ATTEMPTS: Final = 1024
"""First upstream revocations (expired leases, aborted ones) one sweep tries at most."""
SWEEP_FIRST_SECONDS: Final = 1.0
"""Seconds of engine time (and of the book's writes that end each lease) one sweep spends on
first revocations, averaged over the sweeps as for retries: with the served broker's sweep
every 5 s, a burst of expiring leases takes at most ~20% of the broker's thread."""
BATCH_REVOKE_SECONDS: Final = 2.0
"""Seconds of engine time one revocation batch (a feed's, an operator's) spends on upstream
revocations before it leaves the rest to the sweeps (at least one is tried: one connect
timeout of a server that stopped answering, not one per lease)."""
MAX_SWEEP_ORPHANS: Final = 32
"""Upstream calls of the orphan sweep (a secret's listing of its server's objects, the removal
of one orphan) one sweep makes at most (troth.secrets.orphans; review 49e, orphans 1)."""
SWEEP_ORPHAN_SECONDS: Final = 0.5
"""Seconds of engine time one sweep spends on the orphan sweep, averaged over the sweeps as
for retries (an overrun, one connect timeout of a server that stopped answering, is charged to
the next sweeps): with the served broker's sweep every 5 s, at most ~10% of its thread."""
ORPHAN_SWEEP_SECONDS: Final = 60
"""Seconds between two listings of one secret's upstream objects by the orphan sweep (the
first sweep of a broker lists every secret's: what a crash left)."""
ORPHAN_RETRY_MAX: Final = 1800
"""Longest wait before listing again a secret whose listings keep failing (seconds): the wait
starts at `ORPHAN_SWEEP_SECONDS` and doubles at each failure up to this."""
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Due:
    """A REVOKING lease whose upstream revocation may be tried now: the account its quota is
    counted in (digest) and how many attempts failed so far (0: never tried)."""

    lease: Lease
    account: bytes
    attempts: int


def fair_order(due: Iterable[Due]) -> list[Lease]:
    """`due` (the longest due first) in turn across accounts: each account's first, then each
    one's second, ...; the accounts with the fewest due leases first (ties: the one due
    longest first)."""
    by_account: dict[bytes, list[Lease]] = {}
    for item in due:
        by_account.setdefault(item.account, []).append(item.lease)
    queues = sorted(by_account.values(), key=len)  # stable: ties keep the longest due first
    ordered: list[Lease] = []
    for depth in range(max((len(queue) for queue in queues), default=0)):
        ordered += [queue[depth] for queue in queues if depth < len(queue)]
    return ordered


class RetryBudget:
    """The engine time retries (or first attempts) may take, carried from sweep to sweep
    (module docstring)."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        seconds: float = SWEEP_RETRY_SECONDS,
        attempts: int = MAX_SWEEP_RETRIES,
    ) -> None:
        self.clock = clock
        self.seconds = seconds
        self.attempts = attempts
        self._debt = 0.0  # engine time spent past the allowance, paid back by later sweeps

    def run(self, items: Iterable[_T], attempt: Callable[[_T], None]) -> int:
        """Call `attempt` for each of `items` (leases, or the orphan sweep's calls) in order
        while this sweep's allowance lasts; returns how many were left untried."""
        allowance = self.seconds - self._debt
        tried = left = 0
        for item in items:
            if allowance <= 0 or tried >= self.attempts:
                left += 1
                continue
            started = self.clock()
            try:
                attempt(item)
            finally:
                tried += 1
                allowance -= max(self.clock() - started, 0.0)
        self._debt = max(-allowance, 0.0) if tried else max(self._debt - self.seconds, 0.0)
        return left
