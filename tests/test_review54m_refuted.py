"""Review 54m: attacks tried on the fork evidence store that failed (the code was right)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.histories import DAY
from tests.test_review54m_identity import NOW, forked
from troth import limits
from troth.errors import IdentityError
from troth.identity import rotate_identity
from troth.node import Node, init_node, open_node


@pytest.fixture
def node(troth_home: Path) -> Iterator[Node]:
    init_node("n")
    with open_node("n") as node:
        yield node


def test_a_flood_never_evicts_a_local_identitys_forks(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local identity's forks (the evidence that the node's own keys leaked) count in the
    store but belong to no source: a newcomer's fork, with the store full, is not kept rather
    than take one of them, though the local identity holds the most."""
    monkeypatch.setattr(limits, "MAX_FORK_RECORDS", 4)
    local = node.identities.create(now=NOW, name="alice")
    for n in range(3):
        stolen = rotate_identity(
            node.vault,
            local.identity,
            local.primary_key,
            local.next_key,
            now=NOW + n,
            valid_for=DAY,
        ).identity
        with pytest.raises(IdentityError):
            node.identities.check_known(stolen)
    assert len(node.identities.forks(local.identifier)) == 3
    forked(node, os.urandom(32))
    newcomer = forked(node, os.urandom(32))
    assert node.identities.forks(newcomer) == []
    assert len(node.identities.forks(local.identifier)) == 3


def test_a_replayed_fork_evicts_nothing(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fork kept already, given again (kept again as an outranked copy is, straight to the
    store) with the store full, is not inserted twice, and the flood's record that a new fork
    of its source would take stays."""
    monkeypatch.setattr(limits, "MAX_FORK_RECORDS", 4)
    flood = forked(node, os.urandom(32), forks=3)
    victim = forked(node, os.urandom(32))
    (kept,) = node.identities.forks(victim)
    store = node.identities.store
    with store.transaction():
        added = store.add_fork(victim.digest, kept.index, kept.change_hash, kept.history, NOW)
    assert not added
    assert len(node.identities.forks(flood)) == 3
    assert node.identities.forks(victim) == [kept]
