"""How a running node's upkeep says a lasting failure (troth.node.upkeep).

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4: the module is near the 800-line cap).
"""

from __future__ import annotations

from typing import Final

__all__ = ["HOSTED_FEED_FAILURES_LOGGED_EVERY", "UPKEEP_STOP_SECONDS"]

HOSTED_FEED_FAILURES_LOGGED_EVERY: Final = 60
"""Of the re-reads of the hosted authority's store failing in a row (one each HOSTED_FEED_POLL),
the first is logged, then one in this many (about once a minute), and the first success after
them: a lasting failure logged a traceback every second (review 62s, upkeep 3). The watch polls
on at its pace all the same (a revocation on this machine is due within a poll)."""
UPKEEP_STOP_SECONDS: Final = 5.0
"""How long (seconds) a node's stop waits for its upkeep tasks, cancelled, to end before it closes
the services (troth.node.runtime; a round under way maintained the services closed meanwhile:
review 62s, upkeep 2); past it the stop goes on, a task that took its cancellation for a failure
left cancelled."""
