"""Review 53m, pkcs11: what a failed write leaves in the token besides its new keys.

1. `Pkcs11Vault.retire` makes its retirement object (`troth-retired:<key id>`, holding the
   proof) before the rotation's or the renewal's commit. When the write then failed, the object
   stayed for a key still in use: a valid retirement of it, whose proof went into a rolled-back
   write (so possibly into node.db's journal or WAL, where a writer of node.db reads it and
   plants `handle#proof` in `retired_keys`), and which lets `Pkcs11Vault.delete` (no proof)
   destroy the key.
2. `_create` deleted its keys itself when inserting the rows failed, inside a caller's
   transaction too: a batch whose second insert chunk failed there, the caller catching the
   error and committing, left the first chunk's rows naming deleted keys.
3. Such an object, whatever left it (a crash before the commit; a token written before this
   review), was enough for `Pkcs11Vault.delete` to destroy the key it names."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.hsm import (  # noqa: F401 - `node` is a fixture
    NOW,
    agent_node_fixture,
    fail,
    fail_commit,
    renew_at,
    token_retirements,
)
from troth.errors import KeyNotFound, StorageError
from troth.identity.service import IdentityExists
from troth.node import Node
from troth.node.node import init_node, open_node
from troth.vault import KeyHandle, KeyPurpose

pytestmark = pytest.mark.hsm


def test_a_rotation_whose_commit_fails_leaves_no_retirement_in_the_token(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pkcs11 1: the current key and the signing key stayed retired in the token."""
    before = token_retirements(node)
    fail_commit(monkeypatch)
    with pytest.raises(StorageError):
        node.identities.rotate("agent", now=NOW + 10)
    assert token_retirements(node) == before
    record = node.identities.find("agent")
    node.vault.sign(KeyHandle.parse(record.primary_key), b"still the current key")


def test_a_rotation_whose_write_fails_leaves_no_retirement_in_the_token(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pkcs11 1: the same when a storage write after the retirement fails."""
    before = token_retirements(node)
    monkeypatch.setattr(node.identities.store, "add_retired_keys", fail)
    with pytest.raises(StorageError):
        node.identities.rotate("agent", now=NOW + 10)
    assert token_retirements(node) == before


def test_a_renewal_whose_commit_fails_leaves_no_retirement_in_the_token(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pkcs11 1: the signing key a failed renewal replaced stayed retired in the token."""
    before = token_retirements(node)
    fail_commit(monkeypatch)
    with pytest.raises(StorageError):
        node.identities.purpose_key("agent", KeyPurpose.SIGNING, now=renew_at(node))
    assert token_retirements(node) == before


def test_a_stale_retirement_does_not_let_delete_destroy_a_current_key(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pkcs11 1, the harm: after the failed rotation, `delete` (which takes no proof) of the
    identity's current key from another vault object (another process) destroyed it."""
    fail_commit(monkeypatch)
    with pytest.raises(StorageError):
        node.identities.rotate("agent", now=NOW + 10)
    primary = KeyHandle.parse(node.identities.find("agent").primary_key)
    token = node.vault._primary  # type: ignore[attr-defined]
    token._made.discard(primary.key_id)  # as another process's vault, which did not make it
    with pytest.raises(KeyNotFound):
        token.delete(primary)
    node.vault.sign(primary, b"still there")


def test_a_batch_that_fails_inside_a_transaction_that_commits_keeps_its_keys(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pkcs11 2: the first chunk's rows were inserted, the second's name was taken; `_create`
    deleted every key of the batch, and the caller's commit kept the first chunk's rows."""
    monkeypatch.setattr("troth.storage.sqlite_stores._INSERT_ROWS", 2)
    node.identities.create(now=NOW, name="b-2")
    store = node.identities.store
    with store.transaction(), pytest.raises(IdentityExists):
        node.identities.create_many(3, now=NOW, name_prefix="b")
    for name in ("b-0", "b-1"):
        record = node.identities.find(name)
        assert record.next_key is not None
        node.vault.sign(KeyHandle.parse(record.primary_key), b"its key is in the token")
        node.vault.public_key(KeyHandle.parse(record.next_key))


def test_a_software_batch_that_fails_inside_a_transaction_that_commits_keeps_its_keys(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pkcs11 2, the software vault: its batch stores its keys after the rows, and the
    discarded batch never stored the keys the first chunk's committed rows name."""
    monkeypatch.setattr("troth.storage.sqlite_stores._INSERT_ROWS", 2)
    init_node("soft")
    with open_node("soft") as node:
        node.identities.create(now=NOW, name="b-2")
        store = node.identities.store
        with store.transaction(), pytest.raises(IdentityExists):
            node.identities.create_many(3, now=NOW, name_prefix="b")
    with open_node("soft") as node:
        for name in ("b-0", "b-1"):
            record = node.identities.find(name)
            assert record.next_key is not None
            node.vault.sign(KeyHandle.parse(record.primary_key), b"its key is in the vault")
            node.vault.public_key(KeyHandle.parse(record.next_key))


def test_a_stale_retirement_lets_no_other_vault_object_delete_the_key(node: Node) -> None:
    """pkcs11 3: a retirement object of a write that never committed (a crash before it, a
    nested write its caller rolled back, a token written before this review) let `delete`
    (no proof) destroy the current key from any vault object that did not make it."""
    primary = KeyHandle.parse(node.identities.find("agent").primary_key)
    node.vault.retire(primary, KeyPurpose.PRIMARY)  # type: ignore[attr-defined]
    token = node.vault._primary  # type: ignore[attr-defined]
    token._made.discard(primary.key_id)
    with pytest.raises(KeyNotFound):
        node.vault.delete(primary)
    node.vault.sign(primary, b"still the current key")
