"""Review 69x (wave4c: this session's late fixes) findings.

wave4c 1: 69u's lock in NodeTrust (review 69u, wave3 3) was held by `read_due` across its
    query of node.db (`syncs_due`): `set_feed`, which a node's event loop runs itself
    (troth.node.feedsync `sync_feed`, membership's local sync), waited behind a worker
    thread's SQL read, so the whole loop stood still for as long as the read took (a busy
    file: up to its busy timeout), every channel and service with it. The marks are read
    outside the install lock now (reads of them take their own lock, so an older read is
    still never installed after a newer one); the install itself is in memory only.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import cast

import troth
from troth.credentials.revocation import VerifiedFeed
from troth.identity import Identifier
from troth.node import open_node
from troth.node.trust import NodeTrust


class _Feed:
    """A feed as `NodeTrust.set_feed` weighs it."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.authority = Identifier(bytes(32))
        self.head = b""


def test_a_feed_is_installed_while_another_thread_reads_the_marks(troth_home: Path) -> None:
    """wave4c 1: a worker's `read_due` is inside its query of node.db (held there, as by a
    busy file) when the loop installs a feed: the install does not wait for the query."""
    with troth.Node.open("desk"):
        pass
    acme = Identifier(bytes(32))
    with open_node("desk") as node:
        trust = NodeTrust(node, None)
        store = node.wallet.store
        real = store.syncs_due
        installed: list[bool] = []
        loop = threading.Thread(target=trust.set_feed, args=(acme, cast(VerifiedFeed, _Feed(3))))

        def held_query() -> list[tuple[bytes, str]]:
            loop.start()
            loop.join(1)
            installed.append(not loop.is_alive())
            return real()

        try:
            store.syncs_due = held_query  # type: ignore[method-assign]
            reader = threading.Thread(target=trust.read_due)
            reader.start()
            reader.join()
            loop.join()
            assert installed == [True]
            assert trust.feeds[acme].count == 3
        finally:
            trust.detach()
