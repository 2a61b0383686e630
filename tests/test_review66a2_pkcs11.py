"""Review 66a2, the PKCS#11 vault: what a session with the token's PIN does to troth's keys.

pkcs11 1 (low): a key pair made before review 64f is copyable (`CKA_COPYABLE` true), and no
call clears it: SoftHSM2 refuses `CKA_COPYABLE = false` on a key that is not modifiable (every
key since review 48d) and on one that is (`AttributeReadOnly`), so there is no migration in
place. A session with the PIN copies such a key (C_CopyObject with nothing changed), and the
vault then refuses both objects (review 64k: a `VaultError`), so the identity signs nothing
until it is rotated with `--compromised`. docs/vault.md says to replace those keys, but
nothing told the operator which keys were made so: the vault signed with them in silence.
Fixed: the first time a process signs with a copyable key the vault logs a warning naming the
key and the remedy (`key ... is copyable`), once a process per key, as it does for modifiable
seal keys (review 53q); a key made now (not copyable) logs nothing.
"""

from __future__ import annotations

import logging
import os

import pytest

from tests.support.hsm import vault_fixture
from tests.test_review64k_pkcs11 import _pair
from troth.crypto import KeyType, verify_signature
from troth.vault import KeyHandle, KeyPurpose, SealKey
from troth.vault.pkcs11 import Pkcs11Vault

__all__ = ["vault_fixture"]


def _copyable(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "is copyable" in r.getMessage()]


def test_pkcs11_1_signing_with_a_copyable_key_made_before_64f_warns_once(
    vault: Pkcs11Vault, caplog: pytest.LogCaptureFixture
) -> None:
    """pkcs11 1: a key made as troth made them before review 64f signs, and the vault says,
    once, that it is copyable and how to replace it."""
    key_id = os.urandom(16).hex()
    _pair(vault, key_id, f"troth:primary:{key_id}")
    handle = KeyHandle(vault.name, KeyType.ED25519, key_id)
    with caplog.at_level(logging.WARNING, logger="troth.vault.pkcs11"):
        for data in (b"one", b"two"):
            verify_signature(vault.public_key(handle), vault.sign(handle, data), data)
    (warned,) = _copyable(caplog)
    assert key_id in warned
    assert "rotate --compromised" in warned


def test_pkcs11_1_a_key_made_now_is_not_copyable_and_logs_nothing(
    vault: Pkcs11Vault, caplog: pytest.LogCaptureFixture
) -> None:
    """pkcs11 1: the warning is for old keys only (the one the vault makes now is not
    copyable, so a later vault signing with it says nothing)."""
    from pkcs11 import Attribute, ObjectClass

    handle = vault.generate(KeyType.P256, KeyPurpose.SIGNING)
    vault._objects.clear()  # as a later process: the key found in the token
    with caplog.at_level(logging.WARNING, logger="troth.vault.pkcs11"):
        vault.sign(handle, b"new")
    assert _copyable(caplog) == []
    private = vault._find(handle, ObjectClass.PRIVATE_KEY)
    with vault._lock:
        assert private[Attribute.COPYABLE] is False


def test_pkcs11_1_a_copyable_seal_key_made_before_64f_warns_once(
    vault: Pkcs11Vault, caplog: pytest.LogCaptureFixture
) -> None:
    """pkcs11 1, for seal keys: one made between reviews 53f and 64f (not modifiable, so no
    `is modifiable` warning, but copyable) seals and unseals, and the vault says, once, that
    it is copyable; one made now says nothing."""
    from pkcs11 import Attribute
    from pkcs11 import KeyType as P11KeyType

    key_id = os.urandom(16).hex()
    template = {
        Attribute.TOKEN: True,
        Attribute.ID: bytes.fromhex(key_id),
        Attribute.LABEL: f"troth-seal:{key_id}",
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.ENCRYPT: True,
        Attribute.DECRYPT: True,
        Attribute.WRAP: False,
        Attribute.UNWRAP: False,
        Attribute.MODIFIABLE: False,
    }
    with vault._lock:
        vault._session.generate_key(P11KeyType.AES, 256, template=template, store=True)
    old = SealKey(vault.name, key_id)
    new = vault.generate_seal_key()
    vault._objects.clear()  # as a later process: both found in the token
    with caplog.at_level(logging.WARNING, logger="troth.vault.pkcs11"):
        for key in (old, old, new):
            assert vault.unseal(key, vault.seal(key, b"secret", b"aad"), b"aad") == b"secret"
    (warned,) = _copyable(caplog)
    assert key_id in warned
    assert not [r for r in caplog.records if "is modifiable" in r.getMessage()]
