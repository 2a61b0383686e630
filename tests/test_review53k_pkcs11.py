"""Review 53k, pkcs11: a key generated in the token for a write that then fails stays there.

53f fixed `troth identity create NAME` for a name taken (pkcs11 3). A purpose key's renewal and
a rotation generate their new key in the token before they write node.db: a storage write or
the commit failing after it, or the token failing the next call, left that key in the token,
usable by any session with the PIN and recorded nowhere, so nothing ever deleted it. The rule
(troth.identity.fresh): a new key is deleted on every failure before its write commits, and
never once it did (a key a durable row names must stay)."""

from __future__ import annotations

import pytest

from tests.support.hsm import (  # noqa: F401 - `node` is a fixture
    NOW,
    agent_node_fixture,
    fail,
    fail_commit,
    renew_at,
    token_keys,
)
from troth.errors import StorageError, VaultError
from troth.node import Node
from troth.vault import KeyHandle, KeyPurpose

pytestmark = pytest.mark.hsm


def test_a_renewal_whose_write_fails_leaves_no_key_in_the_token(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pkcs11 1: the renewed key was generated and attested, then `put_purpose_key` failed:
    the new key stayed in the token (the renewal had no failure path at all)."""
    before = token_keys(node)
    monkeypatch.setattr(node.identities.store, "put_purpose_key", fail)
    with pytest.raises(StorageError):
        node.identities.purpose_key("agent", KeyPurpose.SIGNING, now=renew_at(node))
    assert token_keys(node) == before


def test_a_renewal_whose_commit_fails_leaves_no_key_in_the_token(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pkcs11 1: the same when the commit fails (rolled back: no row names the key)."""
    before = token_keys(node)
    fail_commit(monkeypatch)
    with pytest.raises(StorageError):
        node.identities.purpose_key("agent", KeyPurpose.SIGNING, now=renew_at(node))
    assert token_keys(node) == before
    handle, _key = node.identities.purpose_key("agent", KeyPurpose.SIGNING, now=NOW)
    node.vault.sign(handle, b"the stored key is the old one, still there")


def test_a_renewal_whose_token_fails_the_next_call_leaves_no_key_in_it(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pkcs11 1: the token made the key, then failed the attestation's signature."""
    before = token_keys(node)
    sign = node.vault.sign

    def failing(handle: KeyHandle, data: bytes) -> bytes:
        monkeypatch.setattr(node.vault, "sign", sign)  # once: the token is back after
        raise VaultError("injected: the token failed")

    monkeypatch.setattr(node.vault, "sign", failing)
    with pytest.raises(VaultError):
        node.identities.purpose_key("agent", KeyPurpose.SIGNING, now=renew_at(node))
    assert token_keys(node) == before


def test_a_rotation_whose_commit_fails_leaves_no_key_in_the_token(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pkcs11 2: a rotation deleted its new keys when its body raised a TrothError, not when
    its commit failed (the transaction's end, outside that `try`)."""
    before = token_keys(node)
    old = node.identities.find("agent")
    fail_commit(monkeypatch)
    with pytest.raises(StorageError):
        node.identities.rotate("agent", now=NOW + 10)
    assert token_keys(node) == before
    assert node.identities.find("agent") == old
    node.identities.rotate("agent", now=NOW + 20)  # its committed next key is still there


def test_a_compromised_rotation_whose_commit_fails_leaves_no_key_in_the_token(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pkcs11 2: the same for a rotation that generates two keys (`compromised`)."""
    before = token_keys(node)
    fail_commit(monkeypatch)
    with pytest.raises(StorageError):
        node.identities.rotate("agent", now=NOW + 10, compromised=True)
    assert token_keys(node) == before


def test_a_rotation_that_fails_inside_a_transaction_that_commits_keeps_its_keys(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pkcs11 3: inside a caller's transaction a failed rotation's rows are not rolled back
    (an inner transaction only joins the outer one): when the caller goes on and commits, the
    stored history names the next key the rotation deleted on its failure, and the identity
    can never rotate again. A key a row may still name is never deleted."""
    store = node.identities.store
    take = store.take_purpose_keys
    monkeypatch.setattr(store, "take_purpose_keys", fail)
    with store.transaction(), pytest.raises(StorageError):
        node.identities.rotate("agent", now=NOW + 10)
    monkeypatch.setattr(store, "take_purpose_keys", take)
    record = node.identities.find("agent")
    assert record.next_key is not None
    node.vault.public_key(KeyHandle.parse(record.next_key))  # in the token
    node.identities.rotate("agent", now=NOW + 20)


def test_a_rotation_that_raises_after_its_commit_keeps_its_keys(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pkcs11 1-3, the other side: a failure after the commit (a callback of it raising) is no
    failure of the rotation's write, and the keys its stored row names stay."""
    store = node.identities.store
    take = store.take_purpose_keys

    def then_raise(identifier: bytes) -> object:
        store.after_commit(lambda: fail())  # runs once the rotation committed
        return take(identifier)

    monkeypatch.setattr(store, "take_purpose_keys", then_raise)
    old = node.identities.find("agent")
    with pytest.raises(StorageError):
        node.identities.rotate("agent", now=NOW + 10)
    monkeypatch.setattr(store, "take_purpose_keys", take)
    record = node.identities.find("agent")
    assert record.history != old.history  # committed
    assert record.next_key is not None
    node.vault.public_key(KeyHandle.parse(record.primary_key))
    node.vault.public_key(KeyHandle.parse(record.next_key))
    node.identities.rotate("agent", now=NOW + 20)
