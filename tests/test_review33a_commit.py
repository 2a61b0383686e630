"""Review 33a, commit: a replacement's after-commit callback now reads the store (review 32a,
commit 1) before it tells the `refuted` hooks of the copy it replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_review30a_enrollment import stores_globex_copy
from tests.test_review32a_commit import never_binds
from tests.test_trust_scope import NOW, make_two
from troth.errors import StorageError
from troth.identity import Identifier, UnverifiedHistory
from troth.node import init_node, open_node


def test_a_failed_cache_read_after_a_replacement_still_tells_the_refuted_hooks(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 33a, commit 1. Alice's full history replaces globex's copy of her from a
    checkpoint (made up after a gap), committed with the copy's changes recorded refuted.
    Since review 32a, commit 1 the replacement's after-commit callback reads the store, under
    the cache's lock, before it tells the `refuted` hooks; when that read fails (a busy or
    failing database: here a callback queued first stands in for it, as another thread
    would), the hooks are never told, so this process keeps the vouchers of the authority that
    made the copy up (`Vouchers.refuted`) until its next maintenance round, and `observe`
    raises StorageError for a replacement that committed (a handshake refuses a peer it
    stored). The read only refreshes the cache: its entry is dropped first, so a failed read
    leaves the store to be read, and the write and the hooks stand.

    Was a strict xfail until `KnownHistories._stored` took a failed read of the store as a
    cache miss (the entry dropped) and told the hooks anyway."""
    init_node("desk")
    init_node("members")
    with open_node("desk") as node, open_node("members") as members:
        members.identities.create(now=NOW, name="alice")
        her = members.identities.get("alice", now=NOW).identity
        stores_globex_copy(node, make_two(), her.identifier)
        told: list[Identifier] = []

        def hook(identifier: Identifier, copy: UnverifiedHistory) -> None:
            told.append(identifier)

        node.identities.refuted_hooks.append(hook)
        store = node.identities.store
        read = store.get_history

        def failing(digest: bytes) -> tuple[bytes, int] | None:
            raise StorageError("database is locked")

        def failing_reads() -> None:
            monkeypatch.setattr(store, "get_history", failing)

        with node.db.transaction():
            node.db.after_commit(failing_reads)
            node.identities.observe(her, binds=never_binds)
        monkeypatch.setattr(store, "get_history", read)

        assert told == [her.identifier]  # the copy it replaced, told
        assert node.identities.stored_changes(her.identifier) == 1  # the store, read again
        node.identities.check_known(her)
