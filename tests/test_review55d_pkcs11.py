"""Review 55d, the PKCS#11 vault: the retirement of a key pair made before review 34a (its
public key object public: docs/vault.md, "PKCS#11 vault"), which `troth identity rotate
--compromised` is the documented way to replace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import NOW as HSM_NOW
from tests.support.hsm import vault_fixture  # noqa: F401  (the fixture `vault`)
from tests.test_review35b_pkcs11 import _PLANT
from troth.crypto import KeyType
from troth.errors import KeyNotFound
from troth.identity import verify_history
from troth.node import open_node
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


def _plant_twins(softhsm: SoftHsm, *key_ids: str) -> None:
    """Review 35b's application without the PIN: public objects with each of `key_ids`."""
    command = [sys.executable, "-c", _PLANT, softhsm.module, softhsm.token_label, *key_ids]
    planted = subprocess.run(command, capture_output=True, text=True, check=False)
    assert planted.stdout.strip() == "planted", planted.stderr


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
    _plant_twins(softhsm, handle.key_id)
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


def test_public_twins_planted_beside_older_key_pairs_do_not_strand_their_identity(
    softhsm: SoftHsm, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 55d, pkcs11 2. An identity whose current and next keys are pairs made before
    review 34a (public public key objects). A session without the PIN plants a public key
    object with each one's CKA_ID (review 35b's application). Review 35b looks troth's keys up
    among the private objects, and a pair made before among the public ones when there is no
    private one: there it found two, `public_key` failed (KeyNotFound), and so did every
    rotation (the next key's public key is what it reveals, the current key's what it
    checks), the recovery rotation that docs/vault.md gives for such pairs included. The
    identity could never rotate again.

    Was a strict xfail until `public_key`, finding several public key objects for one key,
    took the one the key's own signature verifies under."""
    made: list[KeyHandle] = []

    def generate(self: Pkcs11Vault, key_type: KeyType, purpose: KeyPurpose) -> KeyHandle:
        handle = _pair_made_before_review_34a(self)
        self._made.add(handle.key_id)
        made.append(handle)
        return handle

    softhsm.init_node("old", monkeypatch)
    with monkeypatch.context() as patched:
        patched.setattr(Pkcs11Vault, "generate", generate)
        with open_node("old") as node:
            local = node.identities.create(now=HSM_NOW, name="agent", key_type=KeyType.ED25519)
    assert {local.primary_key, local.next_key} <= set(made)
    _plant_twins(softhsm, local.primary_key.key_id, local.next_key.key_id)
    with open_node("old") as node:
        # the pair's own point, not the twin's
        assert node.vault.public_key(local.primary_key) == local.identity.current_key
        rotated = node.identities.rotate("agent", now=HSM_NOW + 60, compromised=True)
        history = node.identities.export("agent")
    assert verify_history(history, now=HSM_NOW + 60).current_key == rotated.identity.current_key
