"""Feed syncs a link revocation leaves due (docs/credentials.md, "Revocation is real"; review
48m, revcrash 2).

A link revocation made on this machine (`troth revoke link`, `Node.revoke`) is taken by the
authority first, then synced into this node's copy of the authority's feed. A process killed
between the two left the entry in the authority's feed and nowhere here: the node, restarted,
handed out the revoked link until its next feed refresh. So the revoker first records, and
commits, that the feed must be synced (`CredentialStore.mark_sync_due`), and clears its mark
once the node's copy holds the entry. A mark that stands is settled before the node hands out
a chain of that authority (`CredentialWallet.best`: a delegation's parent, a credential shown
to a peer) and when a running node reads its trust (`NodeTrust.reload`): the feed is synced
from the authority here, then the authority's marks go; until that succeeds, the node hands
out none of that authority's chains (fail closed).

A mark is cleared by a sync only when no revocation held it as the sync started: each revoker
holds `<node>/node.db.revoking` shared from before its mark until it cleared it
(troth.storage.peers `PeerLock`), and a settling sync reads the marks it may clear while it
holds that file alone, then lets it go, syncs, and clears those only (`orphaned_marks`, as a
running node's sync does). So a sync that fetched the feed before a live revoker's authority
took the entry never clears that revoker's mark (made after the read); a killed revoker holds
nothing (the kernel drops its lock), and its authority's commit, if any, came before the
sync. The file is held alone only for that read, never for a sync: a revocation marking this
node waits for no sync (review 50j, duewatch 4: it waited for the whole of one, up to
`limits.MARK_BUSY_SECONDS`, then left the node unmarked).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from troth.errors import StorageError, TrothError
from troth.identity import Identifier
from troth.limits import MARK_BUSY_SECONDS
from troth.node.authorities import is_local, sync_local_feed
from troth.node.duetries import DueTries
from troth.node.node import Node
from troth.storage.peers import PeerLock

__all__ = ["SyncDue", "clear_marks", "orphaned_marks", "settle_sync", "sync_due_while"]

log = logging.getLogger("troth.node")


def _lock_path(node: Node) -> Path:
    return node.path / "node.db.revoking"


@dataclass(slots=True)
class SyncDue:
    """A revoker's mark (None: this node holds no copy of the authority's feed to sync)."""

    node: Node
    authority: Identifier
    mark: int | None

    def clear(self) -> None:
        """The node's copy of the feed holds the revocation (or the authority refused it,
        taking nothing): the mark goes."""
        if self.mark is not None:
            self.node.wallet.store.clear_sync_due(self.authority.digest, self.mark)
            self.mark = None


@contextlib.contextmanager
def sync_due_while(
    node: Node, authority: Identifier, *, address: str | None, now: int
) -> Iterator[SyncDue]:
    """Inside the block, a link revocation with `authority` (reached at `address`; None: not
    known here, found among the nodes on this machine) is under way: the node's copy of its
    feed is marked due (committed before the block runs) unless the node neither trusts it
    nor holds a feed of it (it has no copy to sync). `SyncDue.synced` clears the mark; one
    left at the end of the block stands (settled by `settle_sync`). StorageError before the
    block runs when a peer holds the node's `node.db.revoking` alone past `MARK_BUSY_SECONDS`
    (one stopped in its read of the marks held the revocation, on the node's storage worker
    for `RunningNode.revoke`, without bound: review 50l, due 2): nothing is revoked."""
    wallet = node.wallet
    holds = authority in wallet.trusted() or wallet.store.feed_state(authority.digest) is not None
    if not holds:
        yield SyncDue(node, authority, None)
        return
    lock = PeerLock(_lock_path(node), wait=MARK_BUSY_SECONDS)
    try:
        mark = wallet.store.mark_sync_due(authority.digest, address or "", now)
        yield SyncDue(node, authority, mark)
    finally:
        lock.close()


def settle_sync(
    node: Node,
    authority: Identifier,
    now: int,
    *,
    tries: DueTries | None = None,
) -> bool:
    """Sync `node`'s copy of the feed of `authority`, on this machine, that a revocation left
    due, and forget the marks no revocation under way held as it started (`orphaned_marks`);
    whether none stands now. Not while a revocation under way holds them all (its own process
    clears its mark), nor for an authority reached over the network (a running node's sync of
    its feed settles them); a sync that fails (the authority is not on this machine now, or
    its node does not open) is logged, and the marks stand. With `tries` (the count of failed
    syncs, troth.node.duetries): after `DUE_TRIES` in a row, no sync until a newer mark is made
    (False: the marks stand; review 50k, due 1; review 51h, due 1)."""
    address = dict(node.wallet.store.syncs_due()).get(authority.digest)
    if address is None:
        return True
    if address and not is_local(address):
        return False
    marks = orphaned_marks(node, authority)  # (`node.db.revoking` alone for this read only)
    if not marks:  # all held by revocations under way (or gone meanwhile)
        return not node.wallet.store.sync_due(authority.digest)
    newest = max(marks)
    if tries is not None and not tries.resume(authority, newest):
        return False  # tried enough: again once a newer mark is made
    try:
        sync_local_feed(node, authority, address=address, now=now)
    except TrothError as exc:
        log.warning(
            "the feed of %s, due a sync after a revocation, was not synced: %s", authority, exc
        )
        if tries is not None and tries.failed(authority):
            tries.stop(authority, newest)
        return False
    except BaseException:
        if tries is not None:
            tries.ended(authority)  # (not a failed sync: its place goes back)
        raise
    if tries is not None:
        tries.succeeded(authority)
    clear_marks(node, authority, marks)
    return not node.wallet.store.sync_due(authority.digest)


def orphaned_marks(node: Node, authority: Identifier) -> list[int]:
    """The marks of `authority` no revocation under way here holds (read while `node.db.revoking`
    is held alone; none when it is not, or when a peer holds it alone past `MARK_BUSY_SECONDS`):
    a sync of its feed started after this is called holds their entries, if their authority
    took them, and may clear them (`clear_marks`)."""
    store = node.wallet.store
    if not store.sync_due(authority.digest):
        return []
    try:  # a peer alone with it past MARK_BUSY_SECONDS (stopped in its own read of the marks:
        # every reader here, the daemon's storage worker too, waited without bound: review
        # 50l, due 1): none read, the marks stand until the next try
        lock = PeerLock(_lock_path(node), wait=MARK_BUSY_SECONDS)
    except StorageError as exc:
        log.warning("the marks due a sync of %s were not read: %s", authority, exc)
        return []
    try:
        with lock.alone() as alone:
            return store.marks_due(authority.digest) if alone else []
    finally:
        lock.close()


def clear_marks(node: Node, authority: Identifier, marks: list[int]) -> None:
    """Forget `marks` of `authority` (`orphaned_marks`), once a sync started after they were
    read completed: in one transaction (a revocation loop may leave thousands: one commit each
    held the storage worker for seconds; review 50j, duewatch 6)."""
    store = node.wallet.store
    with store.transaction():
        for mark in marks:
            store.clear_sync_due(authority.digest, mark)
