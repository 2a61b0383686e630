"""The orphan sweep's schedule and budget (docs/secrets.md, "Crash safety"): upstream objects
with the broker's prefix that no open lease names are removed, within a budget of the sweep.

The PENDING row is committed before an engine creates anything, so after a process crash every
upstream object has a row; the orphan sweep catches the rest (a power loss can undo the last
commits at durability "normal", a revocation an operator finished by hand). It lists each
remote secret's objects (a round trip to its server) and removes those no open lease names.

Review 49e, orphans 1: it ran at every sweep outside every budget, so a server that stopped
answering cost the broker's single thread a connect timeout per secret at every sweep (every
agent's issue and every feed's revocation queued behind it), and a thousand orphans were
removed in one sweep of unbounded length. Now each secret is listed at most every
`ORPHAN_SWEEP_SECONDS` (the first sweep of a broker lists them all), a listing that fails waits
twice as long at each failure (up to `ORPHAN_RETRY_MAX`), the orphans a listing found are
removed over the next sweeps, and one sweep spends at most `MAX_SWEEP_ORPHANS` upstream calls
and `SWEEP_ORPHAN_SECONDS` of engine time on all of it (`RetryBudget`: an overrun is charged to
the next sweeps), the secrets due longest first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from troth.errors import SecretError
from troth.secrets.sweep import (
    MAX_SWEEP_ORPHANS,
    ORPHAN_RETRY_MAX,
    ORPHAN_SWEEP_SECONDS,
    SWEEP_ORPHAN_SECONDS,
    RetryBudget,
)

__all__ = ["OrphanSweep", "orphan_backoff"]


def orphan_backoff(failures: int) -> int:
    """Seconds before a secret whose listing failed `failures` times in a row is listed
    again."""
    return min(ORPHAN_SWEEP_SECONDS << min(max(failures - 1, 0), 16), ORPHAN_RETRY_MAX)


@dataclass(slots=True)
class _Secret:
    """One secret's place in the schedule: when it is listed next, its failed listings in a
    row, and the orphans its last listing found that are still to remove (under `version`,
    the configuration it was listed with)."""

    due: int = 0
    failures: int = 0
    version: object = None
    pending: list[str] = field(default_factory=list)


class OrphanSweep:
    """The schedule of the broker's orphan sweep (module docstring), held in memory: a
    restarted broker lists every secret at its first sweep."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.budget = RetryBudget(clock, seconds=SWEEP_ORPHAN_SECONDS, attempts=MAX_SWEEP_ORPHANS)
        self._secrets: dict[str, _Secret] = {}

    def run(
        self,
        now: int,
        secrets: dict[str, object],
        orphans_of: Callable[[str], list[str]],
        remove: Callable[[str, str], bool],
    ) -> int:
        """One sweep's share at `now` over `secrets` (each remote secret's name and its
        configuration's version): the due listings (`orphans_of(name)`: the orphans, sorted;
        SecretError when the server cannot be listed) and the removals (`remove(name, ref)`:
        whether it was removed) within the budget. Returns how many orphans were removed."""
        known = self._secrets
        for name in list(known):
            if name not in secrets:  # removed: nothing of it to sweep any more
                del known[name]
        for name, version in secrets.items():
            entry = known.setdefault(name, _Secret(version=version))
            if entry.version != version:  # stored anew: what was found may be elsewhere now
                entry.version, entry.pending = version, []
        removed = 0

        def work() -> Iterator[tuple[str, str | None]]:
            # the removals a listing left first, then the listings due, longest due first
            order = sorted(known.items(), key=lambda item: (not item[1].pending, item[1].due))
            for name, entry in order:
                if not entry.pending:
                    if entry.due > now:
                        continue
                    yield name, None  # (the listing fills `pending` when it is made)
                # those not made (the budget spent) stay pending for the next sweeps
                yield from ((name, ref) for ref in list(entry.pending))

        def attempt(item: tuple[str, str | None]) -> None:
            nonlocal removed
            name, ref = item
            entry = known[name]
            if ref is not None:
                entry.pending.remove(ref)
                removed += remove(name, ref)
                return
            try:
                entry.pending = list(orphans_of(name))
            except SecretError:
                entry.failures += 1
                entry.due = now + orphan_backoff(entry.failures)
                return
            entry.failures, entry.due = 0, now + ORPHAN_SWEEP_SECONDS

        self.budget.run(work(), attempt)
        return removed
