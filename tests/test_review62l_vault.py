"""Review 62l, the PKCS#11 vault after review 62d.

vault 1: review 62d (pkcs11 1) made every key search name the handle's CKA_KEY_TYPE, but
`delete_retired`'s retirement proof is found by CKA_ID alone (`troth-retired:<key id>`), and
its fallback for a key "gone already" then destroyed the retirement objects: a retired-key
record of node.db naming the key under the other type (`pkcs11:p256:<id of an Ed25519 key>`,
with the key's proof) was taken as deleted (the record dropped), while the retired private key
stayed in the token, and the record naming it under its own type then found no proof and was
dropped too: the retired key kept for good, signing for every session with the PIN (review
55d, pkcs11 1's outcome). Before review 62d the search by CKA_ID found and destroyed it.
"""

from __future__ import annotations

import pytest

from tests.support.hsm import vault_fixture
from troth.crypto import KeyType
from troth.errors import KeyNotFound
from troth.vault import KeyHandle, KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault

__all__ = ["vault_fixture"]


def test_vault1_a_retired_key_named_under_the_other_type_keeps_its_proof_and_is_deleted(
    vault: Pkcs11Vault,
) -> None:
    """Was a strict xfail until `delete_retired` took a key of its CKA_ID held under the other
    type for no key gone (KeyNotFound, its retirement objects kept)."""
    for key_type, other in ((KeyType.ED25519, KeyType.P256), (KeyType.P256, KeyType.ED25519)):
        handle = vault.generate(key_type, KeyPurpose.SIGNING)
        proof = vault.retire(handle, KeyPurpose.SIGNING)
        crossed = KeyHandle(vault.name, other, handle.key_id)
        with pytest.raises(KeyNotFound):  # (it reported the key deleted)
            vault.delete_retired(crossed, proof)
        vault.delete_retired(handle, proof)  # the record of its own type deletes it
        with pytest.raises(KeyNotFound):
            vault.sign(handle, b"a retired key signs nothing once deleted")
