"""Review 50l, due 1 and 2: a process holding a node's `node.db.revoking` alone (a settling sync
reading its marks, `troth.node.syncdue.orphaned_marks`) and stopped there (SIGSTOP, Ctrl-Z, a
debugger) held every other reader of that node's marks: their shared hold waited without
bound, the running daemon's storage worker (troth.node.feedsync, membership) with it (due 1),
and so did a link revocation's own mark of it (`sync_due_while`, due 2)."""

from __future__ import annotations

import troth
from tests.support.locks import finishes_while_held_alone
from troth.identity import Identifier
from troth.node.syncdue import orphaned_marks, sync_due_while


def test_reading_the_marks_waits_at_most_mark_busy_seconds_for_a_peer_alone() -> None:
    """A peer alone with `agents`' `node.db.revoking` (a flock of another open file, as
    another process's: a stopped settling sync): reading the marks gives up within
    MARK_BUSY_SECONDS, none read (the marks stand: the next poll or settling tries again)."""
    authority = Identifier(bytes(32))
    with troth.Node.open("agents") as agents:
        node = agents._stored
        node.wallet.store.mark_sync_due(authority.digest, "", 0)
        read: list[list[int]] = []
        assert finishes_while_held_alone(
            "agents", lambda: read.append(orphaned_marks(node, authority))
        )
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

    assert finishes_while_held_alone("agents", mark)
    assert isinstance(outcome[0], troth.StorageError)
    assert outcome[1:] == [[]]
