"""Review 31a, requests 1: a request the authority refuses after `_learn` still told the node a
copy was replaced.

Review 30a made an authority store a requester's full history over a copy from a checkpoint
that does not bind it (`Authority._learn`: `observe` with `binds`), inside the request's
transaction. `observe` commits its own (nested) transaction, then updates the process's cache
of stored copies and tells the `refuted` hooks (a running node's `Vouchers` forget the word of
the authorities that named the copy's changes) — but a nested commit is no commit: when the
request is then refused (a rotated history's enroll request or `rotated` announcement over the
member's feed quota), the outer transaction rolls the replacement back, and the cache and the
hooks keep what never happened. The cache then holds for 10 s a copy the store does not (the
store still holds globex's), and the node's memory forgets globex's word on alice until a
reload.

Was a strict xfail until `KnownHistories` ran what follows a replacement (the cache, the
`refuted` hooks) only once the outermost transaction committed
(`SqliteDatabase.after_commit`, `IdentityStore.after_commit`), and dropped it on a rollback.

Review 63a (authority 3): an enroll request over the member's supersession quota is no longer
refused (its history is stored, the supersession left to its `rotated` announcement), so the
request here fails after `_learn` as a write that fails (a full disk) fails it: its redemption's
record raises, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_review30a_enrollment import enroll_alice, stores_globex_copy
from tests.test_trust_scope import NOW, make_two
from troth.authority import Authority
from troth.errors import StorageError
from troth.identity import Identifier, UnverifiedHistory
from troth.node import Node, init_node, open_node


@pytest.fixture
def no_quota(troth_home: Path) -> Iterator[tuple[Authority, Node, Node]]:
    """Acme's node (acme allows a member one feed entry an hour) and alice's."""
    init_node("acme-node")
    init_node("members")
    with open_node("acme-node") as node, open_node("members") as members:
        authority = node.create_authority("acme", now=NOW, revocation_quota=1)
        members.identities.create(now=NOW, name="alice")
        yield authority, node, members


def test_a_refused_request_leaves_no_replacement_behind(
    no_quota: tuple[Authority, Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    authority, node, members = no_quota
    members.identities.rotate("alice", now=NOW)  # two changes: a supersession to publish
    alice = members.identities.get("alice", now=NOW).identifier
    stores_globex_copy(node, make_two(), alice)
    members.identities.create(now=NOW, name="x")
    members.identities.rotate("x", now=NOW)
    other = members.identities.get("x", now=NOW).identity
    authority.revocations.supersede(other, now=NOW, charged_to=alice)  # her quota, spent
    told: list[Identifier] = []
    node.identities.refuted_hooks.append(lambda identifier, copy: told.append(identifier))

    def full_disk(*args: object) -> None:
        raise StorageError("database or disk is full")

    monkeypatch.setattr(authority.store, "record_redemption", full_disk)
    with pytest.raises(StorageError):  # her enroll request, failed after `_learn`
        enroll_alice(authority, members)
    stored = node.identities.store.get_history(alice.digest)
    assert stored is not None
    assert UnverifiedHistory.decode(stored[0]).first_index == 5  # globex's copy, rolled back
    assert node.identities.stored_changes(alice) == 6  # the cache agrees with the store
    assert told == []
