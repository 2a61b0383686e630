"""The PKCS#11 vault against a real SoftHSM2 token: keys made and used inside the token,
never extractable, and identities that the software verifier accepts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import NOW, SoftHsm
from troth.crypto import KeyType, verify_signature
from troth.errors import ConfigError, KeyNotFound, UnsupportedKeyType
from troth.identity import did_document, next_key_digest, verify_attestation, verify_history
from troth.node import open_node
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault

pytestmark = pytest.mark.hsm
SIGNING_TYPES = [KeyType.ED25519, KeyType.P256]


@pytest.fixture
def vault(softhsm: SoftHsm) -> Iterator[Pkcs11Vault]:
    vault = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)
    yield vault
    vault.close()


@pytest.mark.parametrize("key_type", SIGNING_TYPES)
def test_sign_in_token_verify_in_software(vault: Pkcs11Vault, key_type: KeyType) -> None:
    handle = vault.generate(key_type, KeyPurpose.PRIMARY)
    public = vault.public_key(handle)
    assert public.key_type is key_type
    signature = vault.sign(handle, b"message")
    verify_signature(public, signature, b"message")
    if key_type is KeyType.P256:
        from troth.crypto.keys import P256_ORDER

        assert int.from_bytes(signature[32:], "big") <= P256_ORDER // 2  # normalised to low-s


@pytest.mark.parametrize("key_type", SIGNING_TYPES)
def test_private_value_cannot_be_read(vault: Pkcs11Vault, key_type: KeyType) -> None:
    import pkcs11
    from pkcs11.exceptions import AttributeSensitive

    handle = vault.generate(key_type, KeyPurpose.PRIMARY)
    private = vault._find(handle, pkcs11.ObjectClass.PRIVATE_KEY)
    assert private[pkcs11.Attribute.SENSITIVE] is True
    assert private[pkcs11.Attribute.EXTRACTABLE] is False
    assert private[pkcs11.Attribute.NEVER_EXTRACTABLE] is True
    with pytest.raises(AttributeSensitive):
        private[pkcs11.Attribute.VALUE]


def test_x25519_is_not_offered(vault: Pkcs11Vault) -> None:
    with pytest.raises(UnsupportedKeyType, match=r"vault cannot hold x25519 keys"):
        vault.generate(KeyType.X25519, KeyPurpose.SECURE_CHANNEL)


def test_delete(vault: Pkcs11Vault) -> None:
    handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    vault.delete(handle)
    with pytest.raises(KeyNotFound, match=r"no key pkcs11:ed25519"):
        vault.sign(handle, b"x")


def test_wrong_pin_and_missing_token(softhsm: SoftHsm) -> None:
    with pytest.raises(ConfigError, match="cannot log in"):
        Pkcs11Vault(softhsm.module, softhsm.token_label, "0000")
    first = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)
    second = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)  # shares the login
    with pytest.raises(ConfigError, match="another PIN"):
        Pkcs11Vault(softhsm.module, softhsm.token_label, "0000")
    second.close()
    handle = first.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    verify_signature(first.public_key(handle), first.sign(handle, b"x"), b"x")
    first.close()
    with pytest.raises(ConfigError, match="no PKCS#11 token"):
        Pkcs11Vault(softhsm.module, "no-such-token", softhsm.pin)
    with pytest.raises(ConfigError, match=r"cannot load PKCS#11 module /nonexistent/libpkcs11\.so"):
        Pkcs11Vault("/nonexistent/libpkcs11.so", softhsm.token_label, softhsm.pin)


@pytest.mark.parametrize("key_type", SIGNING_TYPES)
def test_hsm_node_identity_lifecycle(
    softhsm: SoftHsm, troth_home: Path, monkeypatch: pytest.MonkeyPatch, key_type: KeyType
) -> None:
    softhsm.init_node("hsm", monkeypatch)
    with open_node("hsm") as node:
        local = node.identities.create(now=NOW, name="agent", key_type=key_type)
        assert local.primary_key.vault == local.next_key.vault == "pkcs11"  # both in the token
        committed = node.vault.public_key(local.next_key)
        assert local.identity.next_key_digest == next_key_digest(committed)
        rotated = node.identities.rotate("agent", now=NOW + 60)
        assert rotated.primary_key == local.next_key  # the committed key, revealed
        assert rotated.identity.current_key == committed
        assert rotated.next_key.vault == "pkcs11"  # the new next key is made in the token
        again = node.identities.rotate("agent", now=NOW + 61)
        assert again.primary_key == rotated.next_key
        for retired in (local.primary_key, rotated.primary_key):
            with pytest.raises(KeyNotFound, match=r"no key pkcs11:\S+ in the token"):
                node.vault.public_key(retired)
        history = node.identities.export("agent")
        channel_key, channel = node.identities.purpose_key(
            "agent", KeyPurpose.SECURE_CHANNEL, now=NOW + 62
        )
        signing_key, signing = node.identities.purpose_key(
            "agent", KeyPurpose.SIGNING, now=NOW + 62
        )
    verified = verify_history(history, now=NOW + 120)  # the software verifier
    assert verified.identifier == local.identifier == again.identifier
    assert len(verified.changes) == 3
    assert verified.next_key_digest == again.identity.next_key_digest
    assert channel_key.vault == "software"  # X25519 lives in the node's software vault
    assert signing_key.vault == "pkcs11"
    verify_attestation(
        verified, channel.attestation, purpose=KeyPurpose.SECURE_CHANNEL, now=NOW + 62
    )
    verify_attestation(verified, signing.attestation, purpose=KeyPurpose.SIGNING, now=NOW + 62)
    assert did_document(verified)["id"] == verified.identifier.did


def test_hsm_node_needs_its_pin(softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> None:
    softhsm.init_node("hsm2", monkeypatch)
    monkeypatch.delenv("TEST_HSM_PIN")
    with pytest.raises(ConfigError, match="TEST_HSM_PIN"):
        open_node("hsm2")
