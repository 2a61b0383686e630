"""Review 53q, broker keys 1 (2 below): the secrets broker's token keys had review 53m's pkcs11 1.

`BrokerKeys._retire` calls the token's `retire` (a retirement object holding the proof) in the
transaction that withdraws (a compromised rotation) or forgets (the prune) a token key, before
its commit. When that write then failed, the object stayed for a key still in node.db: a valid
retirement of a key in use, its proof in a rolled-back write (node.db's journal or WAL). Now a
failed write undoes its retirements (`RetiringVault.unretire`), as identity/fresh.py's
`NewKeys.discard` does since 53m; never after its commit, nor inside a caller's transaction
(which may commit what it wrote)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import fail, fail_commit, token_retirements
from tests.test_review48r_pkcs11 import broker_keys, token_handles
from troth import limits
from troth.errors import KeyNotFound, StorageError
from troth.node import Node
from troth.node.node import open_node
from troth.secrets.keys import RETIRED_KEY_GRACE
from troth.storage import SqliteIdentityStore

pytestmark = pytest.mark.hsm


@pytest.fixture(name="node")
def node_fixture(
    softhsm: SoftHsm, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Node]:
    softhsm.init_node("hsm", monkeypatch)
    with open_node("hsm") as node:
        yield node


def test_a_compromised_rotation_whose_commit_fails_leaves_no_retirement(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = int(time.time())
    keys = broker_keys(node.vault, node.db, now)
    (first,) = token_handles(node.db)
    before = token_retirements(node)
    fail_commit(monkeypatch)
    with pytest.raises(StorageError):
        keys.rotate_signing_key(now + 1, compromised=True)
    assert token_retirements(node) == before
    assert token_handles(node.db) == [first]  # rolled back: still the current key
    node.vault.sign(first, b"still in use")


def test_a_prune_whose_write_fails_leaves_no_retirement(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = int(time.time())
    keys = broker_keys(node.vault, node.db, now)
    keys.rotate_signing_key(now + 1)  # the first key retired, still published
    before = token_retirements(node)
    monkeypatch.setattr(SqliteIdentityStore, "add_retired_keys", fail)
    later = now + limits.MAX_LEASE_TTL + RETIRED_KEY_GRACE + 10
    with pytest.raises(StorageError):
        keys.forget_retired(later)
    assert token_retirements(node) == before
    assert len(token_handles(node.db)) == 2  # rolled back: both rows kept


def test_a_rotation_in_a_callers_transaction_keeps_its_retirements(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """broker keys 2: inside a caller's transaction the write is the caller's to commit. The
    withdrawn key was deleted from the token when the rotation's own (inner) transaction
    ended, no commit: the caller's rolled back, node.db named the deleted key as the current
    one, and the broker signed no token. Now it is deleted after the outermost commit only,
    and its retirement is kept when the caller fails (the token left as a crash leaves it)."""
    now = int(time.time())
    keys = broker_keys(node.vault, node.db, now)
    (first,) = token_handles(node.db)
    before = token_retirements(node)
    with pytest.raises(RuntimeError), node.db.transaction():
        keys.rotate_signing_key(now + 1, compromised=True)
        raise RuntimeError("the caller's next step failed")
    assert token_handles(node.db) == [first]  # rolled back: still the current key
    node.vault.sign(first, b"still in use")
    assert len(token_retirements(node)) == len(before) + 1


def test_a_rotation_in_a_callers_committed_transaction_deletes_the_withdrawn_key(
    node: Node,
) -> None:
    """broker keys 2's other half: the caller's commit deletes the withdrawn key."""
    now = int(time.time())
    keys = broker_keys(node.vault, node.db, now)
    (first,) = token_handles(node.db)
    with node.db.transaction():
        keys.rotate_signing_key(now + 1, compromised=True)
        node.vault.sign(first, b"not deleted before the commit")
    assert first not in token_handles(node.db)
    with pytest.raises(KeyNotFound):
        node.vault.sign(first, b"deleted after it")
