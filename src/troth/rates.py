"""Per-source budgets (token buckets): how much one source may send a service per second, so one
member's volume cannot crowd out the others' or fill a node's disk at the speed of its link; the
secrets broker counts lease issues with the same buckets (troth.secrets.issues). Below every
layer that uses it (the node's services, the broker). Sans-IO: the caller passes `now`
(seconds)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

__all__ = ["ByteBudgets"]


@dataclass(slots=True)
class _Bucket:
    level: int
    at: int


class ByteBudgets:
    """A bucket of `burst` bytes per source, refilled at `rate` bytes per second. At most
    `max_sources` buckets are kept; a full (refilled) bucket is dropped first, and when every
    kept bucket is in use a new source is refused (deny when in doubt), or with `evict` the
    oldest bucket is dropped for it (where sources cost nothing and a refused newcomer is the
    greater harm: review 56g, budgets 1). The refilled buckets are found by a scan of the
    table, made at most once a second while the table stays full (review 60f, budgets 1)."""

    def __init__(self, *, rate: int, burst: int, max_sources: int, evict: bool = False) -> None:
        if rate < 1 or burst < 1 or max_sources < 1:
            raise ValueError("a byte budget needs a positive rate, burst and source count")
        self.rate = rate
        self.burst = burst
        self.max_sources = max_sources
        self.evict = evict
        self._buckets: dict[Hashable, _Bucket] = {}
        self._full_at: int | None = None
        """The second a prune last left the table full: nothing refills within it, so a newcomer
        then is refused without another scan (review 60f, budgets 1: one whole-table scan per
        refused newcomer)."""

    def take(self, source: Hashable, amount: int, *, now: int, keep: int = 0) -> bool:
        """Spend `amount` bytes of `source`'s budget; False (nothing spent) when it lacks them
        (`take_all` of one source, without its loop: every lease issue takes two), or would
        have fewer than `keep` left (a part of the same budget kept for another of its users:
        troth.node.opening_rates, review 73c, rooms 2)."""
        bucket = self._bucket(source, now)
        if bucket is None or amount + keep > bucket.level:
            return False
        bucket.level -= amount
        return True

    def take_all(self, sources: Iterable[Hashable], amount: int, *, now: int) -> bool:
        """Spend `amount` bytes of each source's budget (a delegate's request, of every member
        it counts against); False, nothing spent, when one lacks them or has no bucket."""
        buckets = []
        for source in sources:
            bucket = self._bucket(source, now)
            if bucket is None or amount > bucket.level:
                return False
            buckets.append((source, bucket))
        # a new bucket made (full) for one source may be pruned as the next one's is made:
        # charged, it would charge nothing kept (review 70l, mcpwait 2): refused, none spent
        if len(buckets) > 1 and any(self._buckets.get(s) is not b for s, b in buckets):
            return False
        for _, bucket in buckets:
            bucket.level -= amount
        return True

    def owe(self, sources: Iterable[Hashable], amount: int, *, now: int) -> None:
        """Spend `amount` bytes of each source's budget after the fact (what an answer weighs,
        known once it is made): its level may go below zero, and the source is refused until
        it refills (review 48a, queries 2). A debt is never dropped: a source whose bucket was
        pruned since its `take` (refilled) gets one past `max_sources` when the table is full
        (one per answer in progress at most, pruned once refilled; review 70l, mcpwait 3: the
        debt was dropped, the answer free)."""
        for source in sources:
            bucket = self._bucket(source, now)
            if bucket is None:
                bucket = self._buckets[source] = _Bucket(self.burst, now)
            bucket.level -= amount

    def refund(self, source: Hashable, amount: int, *, now: int) -> None:
        """Give back `amount` spent by `take` (what it paid for did not happen), up to the
        burst; nothing when `source` has no bucket. A budget given back to its burst is one a
        newcomer may have forgotten, so a refusal remembered within the second ends."""
        bucket = self._bucket(source, now)
        if bucket is not None:
            bucket.level = min(self.burst, bucket.level + amount)
            if bucket.level >= self.burst:
                self._full_at = None  # refilled: room for a newcomer (review 60i, budgets 1)

    def _bucket(self, source: Hashable, now: int) -> _Bucket | None:
        """`source`'s bucket refilled to `now` (a new one, full, while there is room)."""
        bucket = self._buckets.get(source)
        if bucket is None:
            if len(self._buckets) >= self.max_sources:
                if self._full_at != now or self.evict:
                    self.prune(now=now)
                if len(self._buckets) >= self.max_sources:
                    if not self.evict:
                        self._full_at = now
                        return None
                    del self._buckets[next(iter(self._buckets))]  # the oldest
            bucket = self._buckets[source] = _Bucket(self.burst, now)
        elif now > bucket.at:
            bucket.level = min(self.burst, bucket.level + (now - bucket.at) * self.rate)
            bucket.at = now
        return bucket

    def prune(self, *, now: int) -> None:
        """Forget the sources whose bucket has refilled (they start full again anyway)."""
        full = [
            source
            for source, bucket in self._buckets.items()
            if bucket.level + max(0, now - bucket.at) * self.rate >= self.burst
        ]
        for source in full:
            del self._buckets[source]

    def __len__(self) -> int:
        return len(self._buckets)
