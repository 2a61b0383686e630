"""Review 64f, the PKCS#11 vault: what a session with the token's PIN does to troth's keys.

pkcs11 1 (low): troth made its keys (the key pair's two objects, a seal key) copyable
(`CKA_COPYABLE` left at its default, true). A session with the PIN (another program on the
token) asked C_CopyObject for a twin of a key with nothing changed (SoftHSM2 refuses any other
CKA_ID, label, or a weaker attribute: tests/test_review57b_refuted.py, but not a plain copy):
the token then held two private objects of the key's CKA_ID, both generated in it and never let
out. A vault opening the key afterwards (the next process, a node restarted) found two and took
the key for gone, `KeyNotFound` (`no key ... in the token`): the identity signed nothing, and its
retirement (`troth identity rotate --compromised`, the recovery) failed too, neither object
destroyed. Fixed: every key troth makes is `CKA_COPYABLE = false` (which
no session sets true again: PKCS#11 v3.0 §4.4), so the token refuses the copy.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import token_vault, vault_fixture
from troth.crypto import KeyType, verify_signature
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault

__all__ = ["vault_fixture"]


def _twin(vault: Pkcs11Vault, key: Any) -> None:
    """What a session with the PIN asks: a copy of `key` with nothing changed."""
    with vault._lock, pytest.raises(vault._errors.PKCS11Error):
        key.copy({})


@pytest.mark.parametrize("key_type", [KeyType.ED25519, KeyType.P256])
def test_pkcs11_1_a_twin_of_a_token_key_is_refused_and_the_key_still_signs_and_retires(
    vault: Pkcs11Vault, softhsm: SoftHsm, key_type: KeyType
) -> None:
    """pkcs11 1: neither object of a key pair is copied; a vault opened after still signs
    with the key and retires it (a twin made it `KeyNotFound` for both)."""
    from pkcs11 import ObjectClass

    handle = vault.generate(key_type, KeyPurpose.PRIMARY)
    _twin(vault, vault._find(handle, ObjectClass.PRIVATE_KEY))
    _twin(vault, vault._find(handle, ObjectClass.PUBLIC_KEY))
    public = vault.public_key(handle)
    vault.close()
    with token_vault(softhsm) as later:
        verify_signature(public, later.sign(handle, b"after"), b"after")
        proof = later.retire(handle, KeyPurpose.PRIMARY)
        later.delete_retired(handle, proof)


def test_pkcs11_1_a_twin_of_a_seal_key_is_refused(vault: Pkcs11Vault) -> None:
    """pkcs11 1: a seal key is not copied either."""
    key = vault.generate_seal_key()
    _twin(vault, vault._seal_object(key))
