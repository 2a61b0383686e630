"""Review 30a, refuted 1: the record of refuted changes has no bound.

Each copy from a checkpoint a node replaces (shown made up, or not binding an admitted peer's
full history) adds a row per change to `refuted_changes` (up to 64 for one copy), and nothing
ever removes one but a linked history holding that change. Every process reads every row at
each reload and each maintenance round (`Vouchers.forget_refuted`, every 30 s) and holds them
in memory. One member of two trusted authorities repeats, for a fresh delegate each time: a
rotation announced to acme (one supersession of its quota), the delegate's 64-change history
shown from that checkpoint with acme's chain (stored), then a forked full history shown with
globex's chain (acme has no standing over it: the copy is replaced, 64 rows recorded). 10,000
times: 640,000 rows, read and held by every process for good (storage.md claimed they "grow
no faster than the histories a node stores": 64 times faster, and those have no bound over
time either).

Was a strict xfail until `limits.MAX_REFUTED_CHANGES` (65,536 rows): each row records the
order of the copy it came with (`refuted_changes.copy_seq`, a migration), and past the bound
`add_refuted` removes the oldest copies' rows, in the transaction that adds a copy's. A record
only keeps the word of an authority that named a refuted change out of the node's judgment of
that identity, so losing one can make the node refuse more, never admit anyone.

The test records replaced copies through the store (`IdentityStore.add_refuted`, what
`observe` calls in the transaction that replaces one) past the bound, a small one here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from troth import limits
from troth.node import init_node, open_node
from troth.storage import SqliteVoucherStore

BOUND = 256  # the limit, made small to reach it quickly


def copy_changes(first: int, count: int) -> list[tuple[int, bytes]]:
    return [(first + i, os.urandom(32)) for i in range(count)]


def test_the_record_of_refuted_changes_is_bounded(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_REFUTED_CHANGES", BOUND, raising=False)
    init_node("desk")
    with open_node("desk") as node:
        store = node.identities.store
        flood = [os.urandom(32) for _ in range(3 * BOUND // 64)]
        for identifier in flood:  # one member's fresh delegates, a full copy each
            with store.transaction():
                store.add_refuted(identifier, copy_changes(5, 64))
        newest = os.urandom(32)
        with store.transaction():
            store.add_refuted(newest, copy_changes(9, 3))
        rows = SqliteVoucherStore(node.db).refuted()
    assert len(rows) <= BOUND
    # the newest record stays whole (the oldest records go first)
    assert sum(1 for identifier, _, _ in rows if identifier == newest) == 3
    assert not any(identifier == flood[0] for identifier, _, _ in rows)
