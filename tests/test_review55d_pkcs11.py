"""Review 55d, the PKCS#11 vault: the retirement of a key pair made before review 34a (its
public key object public: docs/vault.md, "PKCS#11 vault"), which `troth identity rotate
--compromised` is the documented way to replace."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import vault_fixture  # noqa: F401  (the fixture `vault`)
from tests.test_review35b_pkcs11 import _PLANT
from troth.crypto import KeyType
from troth.errors import KeyNotFound
from troth.vault import KeyHandle, KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault


def _pair_made_before_review_34a(vault: Pkcs11Vault) -> KeyHandle:
    """An Ed25519 key pair as troth made them before review 34a (its public object public, no
    purpose in its label)."""
    from pkcs11 import Attribute, Mechanism
    from pkcs11 import KeyType as P11KeyType
    from pkcs11.util.ec import encode_named_curve_parameters

    key_id = os.urandom(16).hex()
    common = {
        Attribute.TOKEN: True,
        Attribute.ID: bytes.fromhex(key_id),
        Attribute.LABEL: f"troth:{key_id}",
    }
    with vault._lock:
        vault._session.generate_keypair(
            P11KeyType.EC_EDWARDS,
            mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
            public_template={
                **common,
                Attribute.EC_PARAMS: encode_named_curve_parameters("1.3.101.112"),
                Attribute.VERIFY: True,
                Attribute.PRIVATE: False,
            },
            private_template={
                **common,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.SIGN: True,
                Attribute.DERIVE: False,
                Attribute.PRIVATE: True,
            },
            store=True,
        )
    return KeyHandle(vault.name, KeyType.ED25519, key_id)


def test_a_planted_public_twin_does_not_keep_a_retired_key_in_the_token(
    softhsm: SoftHsm, vault: Pkcs11Vault
) -> None:
    """Review 55d, pkcs11 1. An identity's key pair made before review 34a has a public public
    key object. A session without the PIN (review 35b's application, knowing the key's
    CKA_ID from a copy of node.db) plants a public key object with that CKA_ID beside it.
    The key signs on (review 35b looks keys up among the private objects), and the owner
    retires it as docs/vault.md says (`rotate --compromised`): the retirement was recorded,
    the commit made, and `delete_retired` looked the public key object up before destroying
    anything, found two, took the KeyNotFound for a key already gone, destroyed the
    retirement objects and reported success: the record was dropped and the retired private
    key stayed in the token for good, signing for every session with the PIN.

    Was a strict xfail until the key pair's destruction began with its private key and took
    every public key object of its CKA_ID with it (no look-up that wants one)."""
    from pkcs11 import Attribute

    handle = _pair_made_before_review_34a(vault)
    vault.sign(handle, b"signs before")
    planted = subprocess.run(
        [sys.executable, "-c", _PLANT, softhsm.module, softhsm.token_label, handle.key_id],
        capture_output=True,
        text=True,
        check=False,
    )
    assert planted.stdout.strip() == "planted", planted.stderr
    vault.sign(handle, b"still signs")
    proof = vault.retire(handle, KeyPurpose.PRIMARY)
    vault.delete_retired(handle, proof)
    vault._objects.clear()  # the token's answer, not a cached object's
    with pytest.raises(KeyNotFound):
        vault.sign(handle, b"retired")
    with vault._lock:
        left = list(
            vault._session.get_objects(
                {Attribute.ID: bytes.fromhex(handle.key_id), Attribute.PRIVATE: True}
            )
        )
    assert left == []  # the private key, its public key object, the retirement objects
