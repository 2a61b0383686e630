"""Review 45d, vault: a software vault whose key check value is gone but whose sealed keys
are not (a restore that carried `vault_keys` without `vault_meta`, a row deleted by hand)."""

from __future__ import annotations

from pathlib import Path

import pytest

from troth.crypto import KeyType, verify_signature
from troth.errors import ConfigError
from troth.storage import SqliteDatabase, SqliteKeyStore
from troth.vault import KeyPurpose, SoftwareVault

KEK = bytes(range(32))
OTHER_KEK = bytes(range(32, 64))


def _open(path: Path, kek: bytes) -> tuple[SqliteDatabase, SoftwareVault]:
    db = SqliteDatabase(path)
    return db, SoftwareVault(SqliteKeyStore(db), kek)


def _drop_check(path: Path) -> None:
    db = SqliteDatabase(path)
    with db.transaction():
        db.execute("DELETE FROM vault_meta WHERE name = 'kek_check'")
    db.close()


def test_a_vault_holding_keys_without_a_check_opens_only_under_their_kek(tmp_path: Path) -> None:
    """Review 45d, vault 1. The KEK check value is what tells a wrong KEK at open; with it
    gone, `SoftwareVault` wrote a fresh check under whatever KEK it was given, even though
    the vault held keys sealed under another. One start with a wrong KEK (an old
    TROTH_VAULT_KEY, a vault.key made afresh beside a database restored without its
    `vault_meta`) then recorded the wrong KEK as the vault's: every later open with the
    right KEK was refused ("does not open this vault") while every key was sealed under it,
    and the node was locked out of its own keys. A vault that holds sealed keys and no
    check now checks the KEK against its newest stored key first: a KEK that does not open it
    is refused (ConfigError, nothing written), the right one writes the check again.

    Was a strict xfail until `SoftwareVault._check_kek` did so (`_opens_newest_key`)."""
    path = tmp_path / "v.db"
    db, vault = _open(path, KEK)
    with db.transaction():
        handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    public = vault.public_key(handle)
    db.close()
    _drop_check(path)

    db = SqliteDatabase(path)
    with pytest.raises(ConfigError, match="does not open this vault"):
        SoftwareVault(SqliteKeyStore(db), OTHER_KEK)
    db.close()

    db, reopened = _open(path, KEK)  # the right KEK still opens it, and its keys sign
    verify_signature(public, reopened.sign(handle, b"data"), b"data")
    db.close()
    db = SqliteDatabase(path)
    with pytest.raises(ConfigError, match="does not open this vault"):  # the check is back
        SoftwareVault(SqliteKeyStore(db), OTHER_KEK)
    db.close()


def test_a_vault_of_seal_keys_only_without_a_check_is_judged_the_same(tmp_path: Path) -> None:
    """Review 45d, vault 1, for a vault whose newest key is a seal key (its row's AAD is not
    a private key's): the KEK is judged by that key too."""
    path = tmp_path / "v.db"
    db, vault = _open(path, KEK)
    with db.transaction():
        seal_key = vault.generate_seal_key()
    sealed = vault.seal(seal_key, b"secret", b"here")
    db.close()
    _drop_check(path)

    db = SqliteDatabase(path)
    with pytest.raises(ConfigError, match="does not open this vault"):
        SoftwareVault(SqliteKeyStore(db), OTHER_KEK)
    db.close()
    db, reopened = _open(path, KEK)
    assert reopened.unseal(seal_key, sealed, b"here") == b"secret"
    db.close()
