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
The latency bound: a mark committed is read within `DUE_POLL` seconds, whatever sync is under
way (the syncs run in a task of their own: review 50j, duewatch 5; a read waits only for the
storage worker's call under way); its sync starts once the syncs before it ended, within
`DUE_RETRY_MAX` once it failed or found the marks held by a revoker still running.

Refetching is bounded: one sync of an authority's feed per poll at most, and one whose marks
stand after it waits twice as long before the next (up to `DUE_RETRY_MAX`, the maintenance
round's period). After `DUE_TRIES` syncs in a row whose marks stood (its authority on no node
here any more, or out of reach: each try of one on this machine opened every node here to look
for it), the poll tries it again only once a mark newer than those it tried is made (at most
once per `DUE_RETRY_MAX`: review 50j, duewatch 1), counted in the node's one count of failed
settling syncs, which handing out chains spends too (`Node.due_tries`, troth.node.duetries:
review 51h, due 1). The marks are never cleared for that: until
a sync started after them completes (told, `feed.sync`; the maintenance round's sync of a
trusted authority's feed; a restart), the authority's chains stay refused (fail closed).
Marks are written only by processes with this node's store, or an authority's store on this
machine, open: no peer makes one over the network.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from troth.errors import TrothError
from troth.identity import Identifier
from troth.limits import DUE_POLL, DUE_RETRY_MAX, DUE_TRIES
from troth.node.duetries import DueTries

if TYPE_CHECKING:
    from troth.node.runtime import NodeRuntime

__all__ = ["DueWatch"]

log = logging.getLogger("troth.node")


class DueWatch:
    """The marks' poll of one running node (`run`: a task of its runtime)."""

    def __init__(self, runtime: NodeRuntime, tries: DueTries | None = None) -> None:
        self.runtime = runtime
        self.tries = DueTries() if tries is None else tries
        """The count of failed syncs (the node's: `Node.due_tries`): a sync whose marks
        stood after it is one, even one a revoker still running held them for."""
        self.time: Callable[[], float] = time.monotonic
        """The clock the waits are measured with (seconds)."""
        self._waits: dict[Identifier, tuple[float, float]] = {}
        """authority -> (the time its next sync may start, the wait after it)."""

    async def run(self) -> None:
        """Read the marks every `DUE_POLL` seconds until cancelled, and sync those due in a
        task of its own: a sync that takes long (an authority's node answering slowly, up to
        `FEED_SYNC_SECONDS`) holds back no reading of newer marks, another authority's chains
        refused from then on (review 50j, duewatch 5: the poll read none until it ended)."""
        syncing: asyncio.Task[None] | None = None
        try:
            while True:
                await asyncio.sleep(DUE_POLL)
                try:
                    await self.runtime.worker.run(self.runtime.trust.read_due)
                except Exception:  # logged, tried again next poll (as a maintenance step is)
                    log.exception("marks due a sync")
                    continue
                if self.runtime.trust.due and (syncing is None or syncing.done()):
                    syncing = asyncio.create_task(self._logged_syncs())
        finally:
            if syncing is not None:
                syncing.cancel()

    async def _logged_syncs(self) -> None:
        try:
            await self.syncs()
        except Exception:  # logged, tried again next poll
            log.exception("marks due a sync")

    async def poll(self) -> None:
        """Read the marks; sync the feed of each authority marked whose wait is over."""
        await self.runtime.worker.run(self.runtime.trust.read_due)
        await self.syncs()

    async def syncs(self) -> None:
        """Sync the feed of each authority marked (as last read) whose wait is over."""
        trust = self.runtime.trust
        due = trust.due
        for gone in [a for a in self._waits if a not in due]:
            del self._waits[gone]
        self.tries.keep(due)
        for authority in sorted(due, key=lambda a: a.digest):
            start, wait = self._waits.get(authority, (0.0, 0.0))
            if self.time() < start or not await self._unparked(authority):
                continue
            try:
                await self._sync(authority)
            except TrothError as exc:
                log.warning("the feed of %s, due a sync, was not synced: %s", authority, exc)
            except Exception:  # (its wait doubles all the same: no sync at every poll)
                log.exception("the feed of %s, due a sync, was not synced", authority)
            except BaseException:  # cancelled: not a failed sync, its place goes back
                self.tries.ended(authority)
                raise
            if authority in trust.due:  # failed, or a revoker still holds its mark
                wait = min(max(2 * wait, DUE_POLL), DUE_RETRY_MAX)
                self._waits[authority] = (self.time() + wait, wait)
                if self.tries.failed(authority):
                    await self._park(authority)
            else:
                self._waits.pop(authority, None)
                self.tries.succeeded(authority)

    def waiting(self) -> frozenset[Identifier]:
        """The authorities whose next sync waits (one failed, or its marks stood)."""
        return frozenset(self._waits)

    async def _newest_mark(self, authority: Identifier) -> int:
        store = self.runtime.node.wallet.store
        marks = await self.runtime.worker.run(store.marks_due, authority.digest)
        return max(marks, default=0)

    async def _park(self, authority: Identifier) -> None:
        """Stop trying `authority` until a newer mark of it is made (module docstring)."""
        self.tries.stop(authority, await self._newest_mark(authority))
        log.warning(
            "the feed of %s, due a sync, was not synced in %d tries: its chains stay refused "
            "until it is (tried again at its next revocation here, when told, or at restart)",
            authority,
            DUE_TRIES,
        )

    async def _unparked(self, authority: Identifier) -> bool:
        """Whether `authority` may be tried (its wait over), the try started
        (`DueTries.resume`): its tries not stopped, or marked since (one more try: its wait
        stays the longest), and its last not under way in a handout (then asked again at the
        next poll). The newest mark is read only once they stopped (one query per wait)."""
        stopped = self.tries.stopped(authority)
        newest = await self._newest_mark(authority) if stopped else 0
        if self.tries.resume(authority, newest):
            return True
        if stopped:
            _, wait = self._waits.get(authority, (0.0, DUE_RETRY_MAX))
            self._waits[authority] = (self.time() + wait, wait)
        return False

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
