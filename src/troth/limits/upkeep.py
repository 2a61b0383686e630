"""How a running node's upkeep says a lasting failure (troth.node.upkeep).

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4: the module is near the 800-line cap).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "HOSTED_FEED_FAILURES_LOGGED_EVERY",
    "NODE_STOP_RESERVE_SECONDS",
    "NODE_STOP_SECONDS",
    "UPKEEP_STOP_SECONDS",
]

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
NODE_STOP_SECONDS: Final = 8.0
"""The most (seconds) a node's stop takes (troth.node.runtime, `NodeRuntime.stop`): below the 10 s
`troth node stop` gives the process before SIGKILL (troth.node.daemon.STOP_TIMEOUT), so a node
ends itself. Its stages (the upkeep tasks, the services, the trace client, the links, the
channels, the TCP listener, the storage thread) run one after another, each within what is
left of it but NODE_STOP_RESERVE_SECONDS for each stage after it; a stage past its share is
abandoned (cancelled, left to end on its own) with an ERROR naming it, and the stages after it
run all the same (review 63v, stop 1: a service's close that never returned held the stop for
ever)."""
NODE_STOP_RESERVE_SECONDS: Final = 0.5
"""Of NODE_STOP_SECONDS, what (seconds) each stage of a node's stop keeps for each stage after it:
however long the stages before took, every stage has at least this."""
