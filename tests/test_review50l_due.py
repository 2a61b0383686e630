"""Review 50l, due 1 and 2: a process holding a node's `node.db.revoking` alone (a settling sync
reading its marks, `troth.node.syncdue.orphaned_marks`) and stopped there (SIGSTOP, Ctrl-Z, a
debugger) held every other reader of that node's marks: their shared hold waited without
bound, the running daemon's storage worker (troth.node.feedsync, membership) with it (due 1),
and so did a link revocation's own mark of it (`sync_due_while`, due 2)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import troth
from troth import limits
from troth.identity import Identifier
from troth.node.syncdue import orphaned_marks, sync_due_while
from troth.storage.peers import PeerLock


def test_reading_the_marks_waits_at_most_mark_busy_seconds_for_a_peer_alone() -> None:
    """A peer alone with `agents`' `node.db.revoking` (a flock of another open file, as
    another process's: a stopped settling sync): reading the marks gives up within
    MARK_BUSY_SECONDS, none read (the marks stand: the next poll or settling tries again)."""
    authority = Identifier(bytes(32))
    with troth.Node.open("agents") as agents:
        node = agents._stored
        node.wallet.store.mark_sync_due(authority.digest, "", 0)
        home = Path(os.environ["TROTH_HOME"]) / "nodes"
        read: list[list[int]] = []
        lock = PeerLock(home / "agents" / "node.db.revoking")
        try:
            with lock.alone() as alone:
                assert alone
                reader = threading.Thread(
                    target=lambda: read.append(orphaned_marks(node, authority)), daemon=True
                )
                reader.start()
                reader.join(timeout=10 * limits.MARK_BUSY_SECONDS + 20)
                finished = not reader.is_alive()
            reader.join()
        finally:
            lock.close()
        assert finished
        assert read == [[]]
        assert node.wallet.store.marks_due(authority.digest) != []


def test_a_revocation_s_own_mark_waits_at_most_mark_busy_seconds_for_a_peer_alone() -> None:
    """A peer stopped alone with `agents`' `node.db.revoking`: a link revocation by `agents`
    (its own mark, `sync_due_while`; `RunningNode.revoke` runs it on the storage worker) gives
    up within MARK_BUSY_SECONDS with a StorageError, before the authority is asked (nothing
    revoked, nothing marked), instead of waiting for as long as the peer is stopped."""
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        agents.enroll(acme.ticket({"orders.access": "read"}))
    home = Path(os.environ["TROTH_HOME"]) / "nodes"
    outcome: list[object] = []

    def mark() -> None:
        with troth.Node.open("agents") as agents:
            node = agents._stored
            try:
                with sync_due_while(node, acme.identifier, address="", now=0):
                    outcome.append("marked")
            except troth.StorageError as exc:
                outcome.append(exc)
            outcome.append(node.wallet.store.marks_due(acme.identifier.digest))

    lock = PeerLock(home / "agents" / "node.db.revoking")
    try:
        with lock.alone() as alone:
            assert alone
            marker = threading.Thread(target=mark, daemon=True)
            marker.start()
            marker.join(timeout=10 * limits.MARK_BUSY_SECONDS + 20)
            finished = not marker.is_alive()
        marker.join()
    finally:
        lock.close()
    assert finished
    assert isinstance(outcome[0], troth.StorageError)
    assert outcome[1:] == [[]]
