"""A running node's watch on its marks (docs/credentials.md, "Revocation is real"; review 50b,
revdue 1).

A revocation made on this machine marks the node's copy of its authority's feed due a sync
before the authority commits (troth.node.syncdue, troth.node.localdue), then tells the daemon
(control op `feed.sync`). A revoker killed in between never tells it: the daemon read its marks
only at its feed refresh, every `MAINTENANCE_SECONDS`, admitting what was revoked meanwhile.
So every `DUE_POLL` seconds the node reads its marks (`NodeTrust.read_due`: one query of a
small indexed table on the storage worker, never one per request: the access decisions read
memory only). From that read on, the chains of a marked authority are judged by none of its
decisions (`NodeTrust._judge`, fail closed), and its feed is synced in the same poll: the
marks no revocation under way holds go once a sync started after they were read completed
(`orphaned_marks`), and the node judges that authority's chains again with the feed synced.
The latency bound: a mark committed is read within `DUE_POLL` seconds; its sync starts in that
poll, within `DUE_RETRY_MAX` once it failed or found the marks held by a revoker still running.

Refetching is bounded: one sync of an authority's feed per poll at most, and one whose marks
stand after it waits twice as long before the next (up to `DUE_RETRY_MAX`, the maintenance
round's period). Marks are written only by processes with this node's store, or an authority's
store on this machine, open: no peer makes one over the network.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from troth.errors import TrothError
from troth.identity import Identifier

if TYPE_CHECKING:
    from troth.node.runtime import NodeRuntime

__all__ = ["DUE_POLL", "DUE_RETRY_MAX", "DueWatch"]

log = logging.getLogger("troth.node")

DUE_POLL: Final = 1.0
"""How often (seconds) a running node reads its marks: a revocation made on this machine whose
process was killed before telling it is taken (and the authority's chains refused) within this."""
DUE_RETRY_MAX: Final = 30.0
"""The longest wait (seconds) before a mark's sync is tried again (the maintenance round's
period, troth.node.upkeep `MAINTENANCE_SECONDS`)."""


class DueWatch:
    """The marks' poll of one running node (`run`: a task of its runtime)."""

    def __init__(self, runtime: NodeRuntime) -> None:
        self.runtime = runtime
        self.time: Callable[[], float] = time.monotonic
        """The clock the waits are measured with (seconds)."""
        self._waits: dict[Identifier, tuple[float, float]] = {}
        """authority -> (the time its next sync may start, the wait after it)."""

    async def run(self) -> None:
        """Poll every `DUE_POLL` seconds until cancelled."""
        while True:
            await asyncio.sleep(DUE_POLL)
            try:
                await self.poll()
            except Exception:  # logged, tried again next poll (as a maintenance step is)
                log.exception("marks due a sync")

    async def poll(self) -> None:
        """Read the marks; sync the feed of each authority marked whose wait is over."""
        runtime = self.runtime
        trust = runtime.trust
        await runtime.worker.run(trust.read_due)
        due = trust.due
        for gone in [a for a in self._waits if a not in due]:
            del self._waits[gone]
        for authority in sorted(due, key=lambda a: a.digest):
            start, wait = self._waits.get(authority, (0.0, 0.0))
            if self.time() < start:
                continue
            try:
                await self._sync(authority)
            except TrothError as exc:
                log.warning("the feed of %s, due a sync, was not synced: %s", authority, exc)
            except Exception:  # (its wait doubles all the same: no sync at every poll)
                log.exception("the feed of %s, due a sync, was not synced", authority)
            if authority in trust.due:  # failed, or a revoker still holds its mark
                wait = min(max(2 * wait, DUE_POLL), DUE_RETRY_MAX)
                self._waits[authority] = (self.time() + wait, wait)
            else:
                self._waits.pop(authority, None)

    async def _sync(self, authority: Identifier) -> None:
        """Sync `authority`'s feed as `feed.sync` does (its marks go: troth.node.membership);
        for the hosted authority, or one the node does not trust, the node's copy is synced on
        this machine (`Node.settle_due`) and re-read."""
        runtime = self.runtime
        trust = runtime.trust
        hosted = trust.hosted
        if (hosted is None or authority != hosted.identifier) and authority in trust.routes:
            await runtime.sync_trusted_feed(authority)
            return
        await runtime.worker.run(runtime.node.settle_due, authority, runtime.clock.now())
        await runtime.worker.run(trust.learn_held)  # (it reads the marks too)
