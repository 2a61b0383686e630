"""The one count of failed settling syncs of marked authorities (docs/credentials.md,
"Revocation is real"; review 51h, due 1).

A node's copy of an authority's feed marked due a sync (troth.node.localdue,
troth.node.syncdue) is synced from two places: a running node's poll of its marks
(troth.node.duewatch) and the settling before a chain of that authority is handed out
(`CredentialWallet.sync_due`, `Node.settle_due_bounded`). An authority on no node here any more
(or out of reach) fails every try, and each try of one on this machine opens every node here to
look for it. So both follow one rule, kept here: after `DUE_TRIES` failed syncs in a row of an
authority, it is not tried again until a mark of it newer than the newest when it stopped is
made, then once more (review 50j, duewatch 1; review 50k, due 1: each wrote the rule with its own
tables). A sync that completes forgets the count. The marks are never cleared for it: the
authority's chains stay refused (fail closed).

A mark's number is never given twice (review 53h, due 2: SQLite gave a deleted newest row's
id again, so a mark made after a sync elsewhere cleared the newest read as not newer).

A try counts from when it starts (`resume`) until it ends (`failed`, `succeeded`, or `ended`
for one that ended with no word, an exception other than a failed sync): one asked for while
the tries under way and the failed ones fill `DUE_TRIES` is refused, its marks standing (review
53h, due 1: a try was counted only once it failed, so the poll and a handout asking at once,
after a newer mark or at the last try, both tried).

The count is kept per process, in memory, not stored (review 51h, due 2): a restart tries
again, as being told (`feed.sync`) does. Restarting a daemon, like making a mark, takes a
process with the node's own files (the troth home is the trust boundary: review 50j's threat
model), which could as well sync the feed, or delete the node; no peer restarts a node or makes
a mark over the network (tests/test_review50b_refuted.py), and a peer that makes a running node
hand out chains many times spends the one count of the node's process (`Node.due_tries`, its
poll's too). A restart is itself dearer than its `DUE_TRIES` tries (it opens the node, and its
poll's tries are spaced by doubling waits), so a count that survived restarts would bound
nothing a restart does not, while a stored one would cost a write per failed try and keep a node
its operator restarted after mending the authority refusing its chains until the next mark.
"""

from __future__ import annotations

import threading
from collections.abc import Container

from troth.identity import Identifier
from troth.limits import DUE_TRIES

__all__ = ["DueTries"]


class DueTries:
    """Failed syncs in a row per authority marked due, and where its tries stopped. Safe to
    share between threads (a running node's poll on its event loop, handouts on its storage
    worker)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failed: dict[Identifier, int] = {}
        """authority -> syncs in a row that left its marks standing."""
        self._stopped: dict[Identifier, int] = {}
        """authority -> the newest of its marks when its tries stopped (`DUE_TRIES`)."""
        self._trying: dict[Identifier, int] = {}
        """authority -> its tries under way (started by `resume`, not ended)."""

    def stopped(self, authority: Identifier) -> bool:
        """Whether `authority`'s tries stopped: ask `resume` with the newest of its marks
        before trying it."""
        with self._lock:
            return authority in self._stopped

    def resume(self, authority: Identifier, newest: int) -> bool:
        """Whether `authority` may be tried now that its newest mark is `newest`: its tries
        did not stop, or a newer mark was made since (one more try: a failed one stops them
        again), and the tries under way and failed leave room for one. True starts the try:
        the caller ends it (`failed`, `succeeded` or `ended`)."""
        with self._lock:
            stopped = self._stopped.get(authority)
            if stopped is not None:
                if newest <= stopped:
                    return False
                del self._stopped[authority]
                self._failed[authority] = DUE_TRIES - 1
            trying = self._trying.get(authority, 0)
            if self._failed.get(authority, 0) + trying >= DUE_TRIES:
                return False  # (the last tries are under way)
            self._trying[authority] = trying + 1
            return True

    def failed(self, authority: Identifier) -> bool:
        """A sync of `authority` left its marks standing (its try ends); whether that was its
        last try (`DUE_TRIES` in a row): the caller then `stop`s it at the newest of its
        marks."""
        with self._lock:
            self._end(authority)
            failed = self._failed[authority] = self._failed.get(authority, 0) + 1
            return failed >= DUE_TRIES

    def ended(self, authority: Identifier) -> None:
        """A try of `authority` ended with no word (not a failed sync: an exception, or it was
        cancelled): not counted, its place given back."""
        with self._lock:
            self._end(authority)

    def _end(self, authority: Identifier) -> None:
        """One try of `authority` under way ended (with the lock held)."""
        trying = self._trying.get(authority, 0)
        if trying > 1:
            self._trying[authority] = trying - 1
        else:
            self._trying.pop(authority, None)

    def stop(self, authority: Identifier, newest: int) -> None:
        """Try `authority` no more until a mark newer than `newest` is made (`resume`)."""
        with self._lock:
            self._stopped[authority] = newest

    def succeeded(self, authority: Identifier) -> None:
        """A sync of `authority` cleared its marks (its try ends): its count goes."""
        with self._lock:
            self._end(authority)
            self._failed.pop(authority, None)
            self._stopped.pop(authority, None)

    def keep(self, authorities: Container[Identifier]) -> None:
        """Forget the count of every authority not in `authorities` (no longer marked; its
        tries under way are kept until they end)."""
        with self._lock:
            for table in (self._failed, self._stopped):
                for gone in [a for a in table if a not in authorities]:
                    del table[gone]

    def counted(self) -> frozenset[Identifier]:
        """The authorities with failed tries counted (stopped or not)."""
        with self._lock:
            return frozenset(self._failed) | frozenset(self._stopped)
