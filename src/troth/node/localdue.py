"""The other nodes here marked due a sync of an authority's feed before that authority, on this
machine, commits a revocation (docs/credentials.md, "Revocation is real"; review 49l/50b,
revdue 1).

A revocation an authority here takes itself (`troth revoke credential`, `troth revoke
identity`, `troth authority members remove`, `Authority.revoke`, `Authority.revoke_identity`)
or a link revocation with it (`troth revoke link`, `Node.revoke`) tells the daemons running
the other nodes here to sync its feed only after its commit (`tell_local_nodes`): a process
killed between the two left them admitting what was revoked until their next maintenance
round. So every other node of the home that trusts the authority, or holds a copy of its feed,
is first marked due a sync of it (`CredentialStore.mark_sync_due`, address empty: the
authority is found among the nodes here), committed before the authority is asked, each
node's `node.db.revoking` held shared from before its mark until the commit (as
troth.node.syncdue's own mark: a sync that fetched the feed before the commit never clears
it). A node's mark goes once its copy holds the feed synced after the commit: a running
node's sync (told, or its poll of the marks, troth.node.duewatch), else the node's own
settling before it hands out a chain of that authority (`CredentialWallet.sync_due`).

Best effort: the authority's own feed is the truth, and a node whose configuration, store or
lock cannot be opened or written (missing, corrupt, not ours, or busy past
`limits.MARK_BUSY_SECONDS`: its `node.db.revoking` held alone by a settling sync, or its store
locked; review 50j, duewatch 2) is logged and left unmarked; the revocation commits all the
same, and that node learns it when told, else at its next maintenance round (a node not
running: when it next syncs that feed). Between the commit and then, a node left unmarked may
admit what was revoked: as every node did before review 50b. A node whose `node.db` does not
exist is never created.
Marks are made only by a process revoking here with the authority's own store open: no peer,
member or not, makes one over the network.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from troth.errors import TrothError
from troth.identity import Identifier
from troth.limits import MARK_BUSY_SECONDS
from troth.node.authorities import home_of
from troth.node.node import Node, list_nodes, node_dir
from troth.storage import Durability, PeerLock, SqliteCredentialStore, SqliteDatabase
from troth.storage.mark_at import forget_mark_at

__all__ = ["LocalDue", "local_nodes_due"]

log = logging.getLogger("troth.node")


@dataclass(slots=True)
class _Marked:
    """A node marked: its `node.db.revoking` held until the commit, its store not (opened
    again to clear the mark), its lock's gate neither: five descriptors a node, held across
    the commit, exhausted the process's 1,024 at 200 nodes here (review 70d, telling 2). The
    mark's number and time: the one made is the one cleared (review 70m, telling2 1)."""

    name: str
    path: Path
    lock: PeerLock
    mark: int | None = None
    marked_at: int = 0


@dataclass(slots=True)
class LocalDue:
    """The marks a revocation under way made at the other nodes here (by node name)."""

    authority: Identifier
    marked: list[_Marked] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """The nodes marked."""
        return [m.name for m in self.marked if m.mark is not None]

    def clear(self) -> None:
        """The authority refused the revocation (it took nothing): the marks go (best
        effort: one left is settled by that node's next sync). A store removed meanwhile is
        not made again, and one whose directory was made again since (a new node of that
        name: its `node.db.revoking` not the file held) keeps its marks: the clear opened the
        path with `SqliteDatabase`, which made a store removed after its check, and deleted a
        new store's mark by the old one's number (review 70m, telling2 1)."""
        for marked in self.marked:
            if marked.mark is None or not marked.lock.held_at_path():
                marked.mark = None
                continue
            try:
                forget_mark_at(
                    marked.path,
                    self.authority.digest,
                    marked.mark,
                    address="",
                    marked_at=marked.marked_at,
                    wait=MARK_BUSY_SECONDS,
                )
            except TrothError as exc:
                log.warning("the mark left at node %r stands: %s", marked.name, exc)
            marked.mark = None

    def release(self) -> None:
        """Let go of the nodes' stores and locks (after the authority's commit)."""
        for marked in self.marked:
            marked.lock.close()
        self.marked = []


@contextlib.contextmanager
def local_nodes_due(node: Node, authority: Identifier, *, now: int) -> Iterator[LocalDue]:
    """Inside the block, a revocation with `authority` (on this machine) is under way: every
    other node of `node`'s home that trusts it or holds a copy of its feed is marked due a
    sync of it, committed before the block runs, and its `node.db.revoking` held shared until
    the block ends (module docstring: best effort, logged). Release the block right after the
    authority's commit: a node's sync clears its mark only once no revocation holds it."""
    due = LocalDue(authority)
    try:
        configs = list_nodes(home_of(node), unreadable={})
    except TrothError as exc:  # (unreadable nodes are skipped; this is the home itself)
        log.warning("no other node here was marked due a sync of %s: %s", authority, exc)
        configs = []
    try:
        for config in configs:
            if config.name == node.name:
                continue
            try:
                marked = _mark(node, config.name, config.durability, authority, now)
            except (TrothError, OSError, sqlite3.Error) as exc:
                log.warning(
                    "node %r was not marked due a sync of %s before its revocation: %s",
                    config.name,
                    authority,
                    exc,
                )
                continue
            if marked is not None:
                due.marked.append(marked)
        yield due
    finally:
        due.release()


def _mark(
    node: Node, name: str, durability: Durability, authority: Identifier, now: int
) -> _Marked | None:
    """Mark node `name` due a sync of `authority`'s feed (None: it neither trusts it nor
    holds a feed of it, or it has no database)."""
    path = node_dir(home_of(node), name)
    if not (path / "node.db").is_file():  # never made here: a missing store stays missing
        return None
    # (troth.node.syncdue: taken before the mark). Both waits, for the lock (held alone while
    # the node settles a sync, for as long as the sync takes) and for the store's write lock,
    # within MARK_BUSY_SECONDS: a busy node is left unmarked (review 50j, duewatch 2)
    deadline = time.monotonic() + MARK_BUSY_SECONDS
    lock = PeerLock(path / "node.db.revoking", wait=MARK_BUSY_SECONDS, gated=False)
    try:
        left = max(deadline - time.monotonic(), 0.0)
        db = SqliteDatabase(path / "node.db", durability, busy_timeout=left)
    except BaseException:
        lock.close()
        raise
    try:
        store = SqliteCredentialStore(db)
        trusted = {bytes(digest) for digest, _ in store.trusted_authorities()}
        if authority.digest in trusted or store.feed_state(authority.digest) is not None:
            mark = store.mark_sync_due(authority.digest, "", now)  # (`LocalDue.clear`'s)
            return _Marked(name, path / "node.db", lock, mark, now)
    except BaseException:
        lock.close()
        raise
    finally:
        db.close()
    lock.close()
    return None
