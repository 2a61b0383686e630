"""Review 60e, the PKCS#11 vault: a key swapped in the token for one whose value someone knows.

docs/vault.md says what a session with the token's PIN can do: use every key while it holds
the session (sign, unseal), never copy one out (troth's keys are sensitive, never extractable,
not modifiable; a copy that changes any of that is refused). What it must not get is a key it
can use after it lost the session. But PKCS#11 lets such a session destroy an object and create
another with the same CKA_ID, label and class: one whose value it chose (`C_CreateObject`), or
read before making it sensitive. The vault found its keys by class and CKA_ID (among private
objects), and used whatever it found.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import token_vault, vault_fixture
from troth.crypto import Aead, AeadAlgorithm, KeyType, verify_signature
from troth.errors import VaultError
from troth.vault import KeyHandle, KeyPurpose, SealKey
from troth.vault.base import seal_aad, split_sealed
from troth.vault.pkcs11 import Pkcs11Vault

__all__ = ["vault_fixture"]

_AAD = b"payments-api"


def _objects(vault: Pkcs11Vault, template: dict[Any, Any]) -> list[Any]:
    with vault._lock:
        return list(vault._session.get_objects(template))


def _swap(vault: Pkcs11Vault, key_id: str, made: list[dict[Any, Any]]) -> None:
    """What a session with the PIN does: destroy every object of `key_id` and create `made`
    in their place, each with that CKA_ID and troth's label for it."""
    attr = vault._p11.Attribute
    found = _objects(vault, {attr.ID: bytes.fromhex(key_id)})
    labels = {int(obj[attr.CLASS]): str(obj[attr.LABEL]) for obj in found}
    with vault._lock:
        for obj in found:
            obj.destroy()
        for template in made:
            vault._session.create_object(
                {
                    **template,
                    attr.TOKEN: True,
                    attr.PRIVATE: True,
                    attr.ID: bytes.fromhex(key_id),
                    attr.LABEL: labels[int(template[attr.CLASS])],
                }
            )


def test_a_seal_key_swapped_for_a_known_one_seals_nothing(
    vault: Pkcs11Vault, softhsm: SoftHsm
) -> None:
    """Review 60e, pkcs11 1. A session with the PIN (a process of the node's user while the
    token was plugged in, an operator gone since) destroys the broker's seal key and creates
    an AES key with its CKA_ID and label, private and sensitive, whose 32 bytes it chose. Every
    vault that looks the seal key up afterwards (the running node after its next restart,
    each command) sealed under it: each upstream secret stored from then on, in node.db, was
    readable to whoever holds a copy of node.db, with no session on the token (the threat
    model's "the key cannot be copied out"). PKCS#11 marks what it generated itself and never
    let out: CKA_LOCAL, CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE, which no session can
    set. Was a strict xfail until the vault used only such a key: refused, nothing sealed."""
    seal_key = vault.generate_seal_key()
    before = vault.seal(seal_key, b"sealed before", _AAD)
    known = os.urandom(32)
    p11 = vault._p11
    attr = p11.Attribute
    _swap(
        vault,
        seal_key.key_id,
        [
            {
                attr.CLASS: p11.ObjectClass.SECRET_KEY,
                attr.KEY_TYPE: p11.KeyType.AES,
                attr.VALUE: known,
                attr.SENSITIVE: True,
                attr.EXTRACTABLE: False,
                attr.ENCRYPT: True,
                attr.DECRYPT: True,
                attr.MODIFIABLE: False,
            }
        ],
    )
    with token_vault(softhsm) as later:  # a vault that finds the key anew
        with pytest.raises(VaultError, match="not generated in the token"):
            _offline_unseal(known, seal_key, later.seal(seal_key, b"sealed after", _AAD))
        with pytest.raises(VaultError):
            later.unseal(seal_key, before, _AAD)


def _offline_unseal(value: bytes, seal_key: SealKey, sealed: bytes) -> bytes:
    nonce, ciphertext = split_sealed(seal_key, sealed)
    aead = Aead(AeadAlgorithm.AES_256_GCM, value)
    return aead.decrypt(nonce, ciphertext, seal_aad(seal_key, _AAD))


def test_a_key_pair_swapped_for_a_known_one_signs_nothing(
    vault: Pkcs11Vault, softhsm: SoftHsm
) -> None:
    """Review 60e, pkcs11 2. The same for a key pair: a session with the PIN replaces the
    secrets broker's token signing key (private and public objects, same CKA_ID and labels)
    with a pair whose private value it chose. The vault then showed the planted public key
    (what the broker publishes in its JWKS, from `public_key`) and signed with the planted
    private key: relying parties accepted tokens the planter minted offline, after losing the
    session. Was a strict xfail until the vault used only a key pair the token generated."""
    handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    known, point = _ed25519_pair()
    p11 = vault._p11
    attr = p11.Attribute
    from pkcs11.util.ec import encode_named_curve_parameters

    common = {
        attr.KEY_TYPE: p11.KeyType.EC_EDWARDS,
        attr.EC_PARAMS: encode_named_curve_parameters("1.3.101.112"),
        attr.MODIFIABLE: False,
    }
    _swap(
        vault,
        handle.key_id,
        [
            {**common, attr.CLASS: p11.ObjectClass.PUBLIC_KEY, attr.EC_POINT: point},
            {
                **common,
                attr.CLASS: p11.ObjectClass.PRIVATE_KEY,
                attr.VALUE: known,
                attr.SENSITIVE: True,
                attr.EXTRACTABLE: False,
                attr.SIGN: True,
            },
        ],
    )
    with token_vault(softhsm) as later:
        with pytest.raises(VaultError, match="not generated in the token"):
            _forged_offline(later, handle, known)
        with pytest.raises(VaultError, match="not generated in the token"):
            later.sign(handle, b"a token")


def _forged_offline(vault: Pkcs11Vault, handle: KeyHandle, known: bytes) -> None:
    """A signature made with `known` alone verifies under the vault's public key."""
    from troth.crypto.private import load_private_key

    message = b'{"sub":"planter","scope":"payments:write"}'
    forged = load_private_key(KeyType.ED25519, known).sign(message)
    verify_signature(vault.public_key(handle), forged, message)


def _ed25519_pair() -> tuple[bytes, bytes]:
    """A private value and its public key's CKA_EC_POINT (a DER OCTET STRING)."""
    from troth.crypto.private import load_private_key

    known = os.urandom(32)
    public = load_private_key(KeyType.ED25519, known).public_key.data
    return known, bytes([4, len(public)]) + public
