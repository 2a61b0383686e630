"""Review 32a, commit: what follows a committed store-or-extend (the process's cache) runs after
the commit, outside the write lock, so another writer's commit can come between."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.test_review30a_enrollment import stores_globex_copy
from tests.test_trust_scope import NOW, make_two
from troth.errors import IdentityError, IdentityFailure
from troth.node import init_node, open_node


def never_binds(changes: Sequence[tuple[int, bytes]]) -> bool:
    """A caller's rule under which the stored copy from a checkpoint does not bind."""
    return False


def test_a_late_cache_update_does_not_step_back_over_a_rotation(troth_home: Path) -> None:
    """Review 32a, commit 1. Alice's full history (change 0) replaces globex's copy of her
    from a checkpoint (made up after a gap) in one transaction; before its after-commit
    callbacks run, another writer (another thread of the process: here a callback queued
    first, which runs in that window) stores her rotation (change 1), and the cache follows
    it. Then the replacement's callback caches change 0 with `replace=True` (a made-up copy
    replaced: the cache steps back), over the newer rotation: for the cache's 10 s this
    process takes change 0 as the stored copy, and a thief holding her pre-rotation key is
    not refused as a rollback. Before review 31a, requests 1 the cache was updated inside the
    transaction, under the write lock.

    Was a strict xfail until the callback of a replacement cached what the store holds once it
    runs, read under the cache's lock (`KnownHistories._stored`)."""
    init_node("desk")
    init_node("members")
    with open_node("desk") as node, open_node("members") as members:
        members.identities.create(now=NOW, name="alice")
        before = members.identities.get("alice", now=NOW).identity
        alice = before.identifier
        stores_globex_copy(node, make_two(), alice)

        def rotation_meanwhile() -> None:
            members.identities.rotate("alice", now=NOW)
            node.identities.observe(members.identities.get("alice", now=NOW).identity)

        with node.db.transaction():
            node.db.after_commit(rotation_meanwhile)
            node.identities.observe(before, binds=never_binds)

        stored = node.identities.store.get_history(alice.digest)
        assert stored is not None
        assert stored[1] == 2  # her rotation is stored
        with pytest.raises(IdentityError) as caught:  # her pre-rotation history, a rollback
            node.identities.check_known(before)
        assert caught.value.reason is IdentityFailure.ROLLBACK
        assert node.identities.stored_changes(alice) == 2  # the cache agrees with the store
