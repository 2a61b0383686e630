"""Review 53q, seal key 1: a PKCS#11 seal key made before review 53f (pkcs11 1) stays
modifiable, as PKCS#11 fixes CKA_MODIFIABLE when the object is made, and nothing said so: the
operator could not tell that the node's sealed secrets lacked 53f's protection. The vault now
logs a warning, once a process, the first time it uses such a key (docs/vault.md, "Sealing:
data encrypted by a key that never leaves the vault"); a key made since is not warned of."""

from __future__ import annotations

import logging
import os

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import token_vault
from troth.vault import SealKey

pytestmark = pytest.mark.hsm


def _old_seal_key(softhsm: SoftHsm) -> SealKey:
    """A seal key as troth made them before review 53f: modifiable."""
    with token_vault(softhsm) as vault:
        p11 = vault._p11
        attr = p11.Attribute
        key_id = os.urandom(16).hex()
        template = {
            attr.TOKEN: True,
            attr.ID: bytes.fromhex(key_id),
            attr.LABEL: "troth-seal:" + key_id,
            attr.PRIVATE: True,
            attr.SENSITIVE: True,
            attr.EXTRACTABLE: False,
            attr.ENCRYPT: True,
            attr.DECRYPT: True,
            attr.MODIFIABLE: True,
        }
        with vault._lock:
            vault._session.generate_key(p11.KeyType.AES, 256, template=template, store=True)
        return SealKey(vault.name, key_id)


def test_a_modifiable_seal_key_is_warned_of_once(
    softhsm: SoftHsm, caplog: pytest.LogCaptureFixture
) -> None:
    key = _old_seal_key(softhsm)
    caplog.set_level(logging.WARNING, logger="troth.vault.pkcs11")
    with token_vault(softhsm) as vault:
        sealed = vault.seal(key, b"secret", b"aad")
        assert vault.unseal(key, sealed, b"aad") == b"secret"
    with token_vault(softhsm) as vault:
        vault.unseal(key, sealed, b"aad")
    warned = [r.getMessage() for r in caplog.records if "is modifiable" in r.getMessage()]
    assert len(warned) == 1, warned
    assert str(key) in warned[0]


def test_a_seal_key_made_since_is_not_warned_of(
    softhsm: SoftHsm, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="troth.vault.pkcs11")
    with token_vault(softhsm) as vault:
        key = vault.generate_seal_key()
        vault._objects.clear()  # found again in the token, as by another process
        vault.unseal(key, vault.seal(key, b"secret", b"aad"), b"aad")
    assert not [r for r in caplog.records if "is modifiable" in r.getMessage()]
