"""Review 67b: attacks on the PKCS#11 vault that did not work; each test fails if the defence it
names breaks."""

from __future__ import annotations

import subprocess
import sys
from typing import Final

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import vault_fixture
from troth.crypto import KeyType, verify_signature
from troth.errors import KeyNotFound
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault
from troth.vault.pkcs11_session import module_spelling

__all__ = ["vault_fixture"]

_REPLACE: Final = """
import sys
from pkcs11 import Attribute, KeyType, Mechanism, lib
from pkcs11.util.ec import encode_named_curve_parameters

module, label, pin, key_id = sys.argv[1:]
with lib(module).get_token(token_label=label).open(user_pin=pin, rw=True) as session:
    for obj in list(session.get_objects({Attribute.ID: bytes.fromhex(key_id)})):
        obj.destroy()
    params = encode_named_curve_parameters("1.3.101.112")
    for _ in range(8):  # new objects, under the destroyed key's id among them
        session.generate_keypair(
            KeyType.EC_EDWARDS, mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN, store=True,
            public_template={Attribute.EC_PARAMS: params, Attribute.LABEL: "67b-other",
                             Attribute.TOKEN: True},
            private_template={Attribute.LABEL: "67b-other", Attribute.TOKEN: True},
        )
"""


def test_a_cached_key_object_destroyed_and_replaced_elsewhere_signs_nothing(
    vault: Pkcs11Vault, softhsm: SoftHsm
) -> None:
    """Another process destroys a key this vault has signed with (its object cached) and makes
    new key pairs: the cached object is never one of them (SoftHSM2 gives every object a
    handle of its own in a process, none reused), so the next signature is KeyNotFound, not
    one by another key (`sign`'s `_STALE_OBJECT`); the vault's other keys sign on."""
    gone = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    kept = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    kept_public = vault.public_key(kept)
    vault.sign(gone, b"cached")
    replace = [_REPLACE, vault_module(softhsm), softhsm.token_label, softhsm.pin, gone.key_id]
    done = subprocess.run(
        [sys.executable, "-c", *replace],
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        assert done.returncode == 0, done.stderr
        with pytest.raises(KeyNotFound, match="destroyed"):
            vault.sign(gone, b"m")
        with pytest.raises(KeyNotFound):
            vault.public_key(gone)
        verify_signature(kept_public, vault.sign(kept, b"m"), b"m")
    finally:
        _destroy_labelled(softhsm, "67b-other")


def vault_module(softhsm: SoftHsm) -> str:
    """The module path as the vault loads it (one loading per process: `module_spelling`)."""
    return module_spelling(softhsm.module)


def _destroy_labelled(softhsm: SoftHsm, label: str) -> None:
    """Destroy the objects labelled `label` (the process is logged in: the vault is open)."""
    import pkcs11

    token = pkcs11.lib(vault_module(softhsm)).get_token(token_label=softhsm.token_label)
    with token.open(rw=True) as session:
        for obj in list(session.get_objects({pkcs11.Attribute.LABEL: label})):
            obj.destroy()
