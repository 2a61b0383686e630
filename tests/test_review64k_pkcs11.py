"""Review 64k, the PKCS#11 vault: a twin under a key's CKA_ID, after review 64f.

pkcs11 1 (low: a key kept in the token for good after the recovery meant to retire it; a
misleading error). Review 64f made troth's keys `CKA_COPYABLE = false` so that a session with
the PIN can no longer make a twin of a key (two private objects of its CKA_ID, after which the
key was "not found": no signature, no retirement). That leaves two ways to the same state: a
key made before review 64f stays copyable, and any key can be twinned by `C_GenerateKeyPair`
under its CKA_ID and label (the token sets CKA_LOCAL, CKA_ALWAYS_SENSITIVE and
CKA_NEVER_EXTRACTABLE on it: `_generated` takes it for troth's own). Then the vault said
"no key ... in the token" for a key the token held, and the recovery docs/vault.md names,
`troth identity rotate --compromised`, committed without retiring it (the vault's
`retire` answered KeyNotFound, taken as "gone"): the old key and its twin stayed in the token
for good, signing for any session with the PIN. Now the vault names the twin (a VaultError
saying what to do, neither object used to sign), and retiring a key retires, then destroys,
every private object under its CKA_ID.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import NOW, agent_node_fixture, token_vault, vault_fixture
from troth.crypto import KeyType
from troth.errors import KeyNotFound, VaultError
from troth.node import Node
from troth.vault import KeyHandle, KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault

__all__ = ["agent_node_fixture", "vault_fixture"]


def _pair(vault: Pkcs11Vault, key_id: str, label: str) -> Any:
    """A key pair generated in the token under `key_id` and `label`, copyable (the token's
    default: how troth made its keys before review 64f, and what a session with the PIN makes
    under a key's id); its private object."""
    from pkcs11 import Attribute, Mechanism
    from pkcs11 import KeyType as P11KeyType
    from pkcs11.util.ec import encode_named_curve_parameters

    same: dict[Any, Any] = {Attribute.ID: bytes.fromhex(key_id), Attribute.LABEL: label}
    same |= {Attribute.TOKEN: True, Attribute.PRIVATE: True}
    with vault._lock:
        _, private = vault._session.generate_keypair(
            P11KeyType.EC_EDWARDS,
            mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
            public_template={
                **same,
                Attribute.EC_PARAMS: encode_named_curve_parameters("1.3.101.112"),
                Attribute.VERIFY: True,
            },
            private_template={
                **same,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.SIGN: True,
            },
            store=True,
        )
    return private


def _twinned(vault: Pkcs11Vault, how: str) -> KeyHandle:
    """A key of `vault` with a twin: `generated` under its id (a key troth made now), or
    `copied` (C_CopyObject of a key made before review 64f)."""
    if how == "generated":
        handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
        _pair(vault, handle.key_id, f"troth:primary:{handle.key_id}")
        return handle
    key_id = os.urandom(16).hex()
    old = _pair(vault, key_id, f"troth:primary:{key_id}")
    with vault._lock:
        old.copy({})
    return KeyHandle(vault.name, KeyType.ED25519, key_id)


def _objects_under(vault: Pkcs11Vault, handle: KeyHandle) -> int:
    from pkcs11 import Attribute, ObjectClass

    with vault._lock:
        found = vault._session.get_objects(
            {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: bytes.fromhex(handle.key_id)}
        )
        return sum(1 for _ in found)


@pytest.mark.parametrize("how", ["generated", "copied"])
def test_pkcs11_1_a_twinned_key_is_named_not_taken_for_no_key(
    vault: Pkcs11Vault, softhsm: SoftHsm, how: str
) -> None:
    """pkcs11 1: with a key pair generated under a key's CKA_ID (CKA_COPYABLE does not stop
    it), or an old key copied, a later vault neither signs nor shows the key, and says why
    (not KeyNotFound, "no key"): two objects, what to do."""
    handle = _twinned(vault, how)
    vault.close()
    with token_vault(softhsm) as later:
        for use in (lambda: later.sign(handle, b"x"), lambda: later.public_key(handle)):
            with pytest.raises(VaultError, match="2 private objects under the id") as caught:
                use()
            assert not isinstance(caught.value, KeyNotFound)
            assert "rotate --compromised" in str(caught.value)


@pytest.mark.parametrize("how", ["generated", "copied"])
def test_pkcs11_1_retiring_a_twinned_key_destroys_every_object_under_its_id(
    vault: Pkcs11Vault, softhsm: SoftHsm, how: str
) -> None:
    """pkcs11 1: `retire` then `delete_retired` of a key with a twin take both objects (the
    retire answered KeyNotFound, and the key stayed)."""
    handle = _twinned(vault, how)
    vault.close()
    with token_vault(softhsm) as later:
        proof = later.retire(handle, KeyPurpose.PRIMARY)
        later.delete_retired(handle, proof)
        assert _objects_under(later, handle) == 0


def test_pkcs11_1_a_compromised_rotation_retires_a_twinned_key_and_its_twin(
    node: Node,
) -> None:
    """pkcs11 1, the recovery the error names: an identity's key with a key pair generated
    under its CKA_ID, `rotate --compromised` leaves no object of the old key in the token (it
    committed, and both stayed, signing for any session with the PIN)."""
    vault: Pkcs11Vault = node.vault._primary  # type: ignore[attr-defined]
    old = KeyHandle.parse(str(node.identities.find("agent").primary_key))
    _pair(vault, old.key_id, f"troth:primary:{old.key_id}")
    assert _objects_under(vault, old) == 2
    node.identities.rotate("agent", now=NOW + 10, compromised=True)
    assert _objects_under(vault, old) == 0
