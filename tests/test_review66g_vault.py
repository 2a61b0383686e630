"""Review 66g, vault 1: the software vault deleted a key through a handle of another type.

`SoftwareVault.delete(handle)` and `delete_seal_key(key)` deleted the row numbered by the key
id whatever its type: a handle naming an Ed25519 key as X25519 deleted the Ed25519 key, a
`KeyHandle` naming a seal key's id deleted the seal key (every blob sealed under it, the
broker's secrets included, then opened under nothing, for good), and a `SealKey` naming a
private key's id deleted that private key. docs/vault.md promised otherwise ("a handle names its
key type too ... as the software vault refuses a row of another type"), and the PKCS#11 vault
refuses such a handle (review 62d, pkcs11 1; review 62l, vault 1). A handle comes from a
record in node.db (an identity's keys, a retired key, the broker's keys): a record that names
the wrong type, damaged or written by a bug, destroyed another key instead of failing.

Fixed: a deletion whose row (or cached key) is of another type is `KeyNotFound`, nothing
deleted (`SoftwareVault._drop`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_vault_software import open_vault
from troth.crypto import KeyType
from troth.errors import KeyNotFound
from troth.vault import KeyHandle, KeyPurpose, SealKey, SoftwareVault


def test_a_handle_of_another_type_deletes_no_key(tmp_path: Path) -> None:
    _db, vault = open_vault(tmp_path / "vault.db")
    handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    with pytest.raises(KeyNotFound, match="no key"):
        vault.delete(KeyHandle(vault.name, KeyType.X25519, handle.key_id))
    _db, reopened = open_vault(tmp_path / "vault.db")  # the row too, not only the cache
    for kept in (vault, reopened):
        assert kept.public_key(handle) == vault.public_key(handle)
        kept.sign(handle, b"still here")


def test_an_ephemeral_vault_refuses_a_handle_of_another_type() -> None:
    vault = SoftwareVault()
    handle = vault.generate(KeyType.P256, KeyPurpose.SIGNING)
    with pytest.raises(KeyNotFound, match="no key"):
        vault.delete(KeyHandle(vault.name, KeyType.ED25519, handle.key_id))
    vault.sign(handle, b"still here")


def test_a_key_handle_deletes_no_seal_key(tmp_path: Path) -> None:
    _db, vault = open_vault(tmp_path / "vault.db")
    seal = vault.generate_seal_key()
    sealed = vault.seal(seal, b"a broker secret", b"aad")
    with pytest.raises(KeyNotFound, match="no key"):
        vault.delete(KeyHandle(vault.name, KeyType.ED25519, seal.key_id))
    _db, reopened = open_vault(tmp_path / "vault.db")
    assert reopened.unseal(seal, sealed, b"aad") == b"a broker secret"


def test_a_seal_key_deletes_no_private_key(tmp_path: Path) -> None:
    _db, vault = open_vault(tmp_path / "vault.db")
    handle = vault.generate(KeyType.X25519, KeyPurpose.SECURE_CHANNEL)
    with pytest.raises(KeyNotFound, match="no seal key"):
        vault.delete_seal_key(SealKey(vault.name, handle.key_id))
    _db, reopened = open_vault(tmp_path / "vault.db")
    assert reopened.public_key(handle) == vault.public_key(handle)


def test_a_handle_of_its_own_type_still_deletes(tmp_path: Path) -> None:
    """The guard above refuses only another type's row: the right handle deletes, once."""
    _db, vault = open_vault(tmp_path / "vault.db")
    handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    seal = vault.generate_seal_key()
    vault.delete(handle)
    vault.delete_seal_key(seal)
    _db, reopened = open_vault(tmp_path / "vault.db")
    with pytest.raises(KeyNotFound):
        reopened.sign(handle, b"gone")
    with pytest.raises(KeyNotFound):
        reopened.delete_seal_key(seal)
