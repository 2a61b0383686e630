"""Sealing through a purpose key that never leaves the vault: AES-256-GCM in the software vault
(the key itself sealed under the KEK) and in a PKCS#11 token (CKK_AES, CKM_AES_GCM)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import SoftHsm
from troth.crypto import KeyType
from troth.errors import ConfigError, KeyNotFound, VaultError
from troth.storage import SqliteDatabase, SqliteKeyStore
from troth.vault import CompositeVault, KeyHandle, KeyPurpose, SealingVault, SealKey, SoftwareVault
from troth.vault.base import SEAL_OVERHEAD

KEK = bytes(range(32))
CANARY = b"canary-upstream-secret-" + os.urandom(8).hex().encode()


def open_vault(path: Path, kek: bytes = KEK) -> tuple[SqliteDatabase, SoftwareVault]:
    db = SqliteDatabase(path)
    return db, SoftwareVault(SqliteKeyStore(db), kek)


def check_sealing(vault: SealingVault) -> None:
    """The properties every sealing vault has (software and PKCS#11 alike)."""
    key, other = vault.generate_seal_key(), vault.generate_seal_key()
    sealed = vault.seal(key, CANARY, b"row-1")
    assert len(sealed) == len(CANARY) + SEAL_OVERHEAD
    assert CANARY not in sealed
    assert vault.unseal(key, sealed, b"row-1") == CANARY
    assert vault.seal(key, CANARY, b"row-1") != sealed  # a fresh nonce each time
    for bad_key, aad in ((key, b"row-2"), (key, b""), (other, b"row-1")):
        with pytest.raises(VaultError, match=r"tampered, moved or another key\)"):
            vault.unseal(bad_key, sealed, aad)
    for index in range(len(sealed)):
        tampered = sealed[:index] + bytes([sealed[index] ^ 0x80]) + sealed[index + 1 :]
        with pytest.raises(VaultError, match=r"tampered, moved or another key\)"):
            vault.unseal(key, tampered, b"row-1")
    for short in (b"", sealed[: SEAL_OVERHEAD - 1], sealed[:1]):
        with pytest.raises(VaultError, match=r"tampered, moved or another key\)"):
            vault.unseal(key, short, b"row-1")
    assert vault.unseal(key, vault.seal(key, b"", b""), b"") == b""
    vault.delete_seal_key(other)
    with pytest.raises(KeyNotFound, match=r"no (seal )?key "):
        vault.seal(other, b"x", b"")


def test_software_sealing(tmp_path: Path) -> None:
    db, vault = open_vault(tmp_path / "v.db")
    check_sealing(vault)
    check_sealing(SoftwareVault())  # ephemeral
    db.close()


def test_seal_key_survives_reopen_and_needs_the_kek(tmp_path: Path) -> None:
    db, vault = open_vault(tmp_path / "v.db")
    key = vault.generate_seal_key()
    sealed = vault.seal(key, CANARY, b"aad")
    db.close()
    db, reopened = open_vault(tmp_path / "v.db")
    assert reopened.unseal(SealKey.parse(str(key)), sealed, b"aad") == CANARY
    db.close()
    for path in tmp_path.iterdir():
        assert CANARY not in path.read_bytes(), path
    with pytest.raises(
        ConfigError, match=r"the vault key \(TROTH_VAULT_KEY or vault\.key\) does not open"
    ):
        open_vault(tmp_path / "v.db", kek=bytes(32))


def test_seal_key_rows_and_private_key_rows_do_not_mix(tmp_path: Path) -> None:
    db, vault = open_vault(tmp_path / "v.db")
    seal_key = vault.generate_seal_key()
    signing = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    db.close()
    db, reopened = open_vault(tmp_path / "v.db")  # nothing cached
    with pytest.raises(VaultError, match=r"does not match its stored record"):  # a seal key's
        # row used as a signing key
        reopened.sign(KeyHandle("software", KeyType.ED25519, seal_key.key_id), b"x")
    with pytest.raises(
        VaultError, match=r"does not match its stored record"
    ):  # a signing key's row used as a seal key
        reopened.seal(SealKey("software", signing.key_id), b"x", b"")
    for bogus in ("software:aes256gcm:zz", "pkcs11:aes256gcm:00", "software:ed25519:00", "x"):
        with pytest.raises((KeyNotFound, ValueError)):
            reopened.seal(SealKey.parse(bogus), b"x", b"")
    # the sealed seal key is bound to its row: moving it to another id fails to unseal
    rows = dict(db.execute("SELECT key_id, sealed FROM vault_keys").fetchall())
    db.execute(
        "UPDATE vault_keys SET sealed = ? WHERE key_id = ?",
        (rows[int(seal_key.key_id, 16)], int(signing.key_id, 16)),
    )
    db.execute("UPDATE vault_keys SET key_type = 16 WHERE key_id = ?", (int(signing.key_id, 16),))
    with pytest.raises(VaultError, match="failed to unseal"):
        reopened.seal(SealKey("software", signing.key_id), b"x", b"")
    db.close()


@settings(max_examples=50, deadline=None)
@given(plaintext=st.binary(max_size=2048), aad=st.binary(max_size=64))
def test_roundtrip_property(plaintext: bytes, aad: bytes) -> None:
    vault = SoftwareVault()
    key = vault.generate_seal_key()
    assert vault.unseal(key, vault.seal(key, plaintext, aad), aad) == plaintext


# -- PKCS#11 ---------------------------------------------------------------------------------


@pytest.fixture
def token_vault(softhsm: SoftHsm) -> Iterator[SealingVault]:
    from troth.vault.pkcs11 import Pkcs11Vault

    vault = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)
    yield vault
    vault.close()


@pytest.mark.hsm
def test_pkcs11_sealing(token_vault: SealingVault) -> None:
    check_sealing(token_vault)


@pytest.mark.hsm
def test_pkcs11_seal_key_never_leaves_the_token(
    token_vault: SealingVault, softhsm: SoftHsm
) -> None:
    import pkcs11
    from pkcs11.exceptions import AttributeSensitive

    from troth.vault.pkcs11 import Pkcs11Vault

    key = token_vault.generate_seal_key()
    sealed = token_vault.seal(key, CANARY, b"aad")
    assert isinstance(token_vault, Pkcs11Vault)
    secret = token_vault._seal_object(key)  # white-box: the token object's attributes
    assert secret[pkcs11.Attribute.SENSITIVE] is True
    assert secret[pkcs11.Attribute.EXTRACTABLE] is False
    assert secret[pkcs11.Attribute.NEVER_EXTRACTABLE] is True
    assert secret[pkcs11.Attribute.WRAP] is False
    with pytest.raises(AttributeSensitive):
        secret[pkcs11.Attribute.VALUE]
    # another opener of the token finds the key by its id
    again = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)
    assert again.unseal(SealKey.parse(str(key)), sealed, b"aad") == CANARY
    again.close()


@pytest.mark.hsm
def test_composite_vault_seals_in_the_token(token_vault: SealingVault, tmp_path: Path) -> None:
    db, software = open_vault(tmp_path / "v.db")
    composite = CompositeVault(token_vault, software, frozenset({KeyType.X25519}))
    key = composite.generate_seal_key()
    assert key.vault == "pkcs11"
    assert composite.unseal(key, composite.seal(key, CANARY, b"a"), b"a") == CANARY
    soft_key = software.generate_seal_key()
    assert composite.unseal(soft_key, software.seal(soft_key, b"s", b""), b"") == b"s"
    with pytest.raises(KeyNotFound, match=r"no vault that seals named 'elsewhere' on this node"):
        composite.seal(SealKey("elsewhere", "00"), b"x", b"")
    db.close()
