"""The software vault: keys usable, never readable, sealed at rest, bound to their rows."""

from __future__ import annotations

import inspect
import os
import stat
import time
from pathlib import Path

import pytest

from troth.crypto import KeyType, verify_signature
from troth.errors import ConfigError, CryptoError, KeyNotFound, VaultError
from troth.storage import SqliteDatabase, SqliteKeyStore
from troth.vault import KeyHandle, KeyPurpose, SealingVault, SoftwareVault, Vault
from troth.vault.base import key_batch

KEK = bytes(range(32))


def open_vault(path: Path, kek: bytes = KEK) -> tuple[SqliteDatabase, SoftwareVault]:
    db = SqliteDatabase(path)
    return db, SoftwareVault(SqliteKeyStore(db), kek)


def test_no_method_returns_private_key_bytes() -> None:
    interface = {"generate", "public_key", "sign", "dh", "delete", "name"}
    sealing = {"generate_seal_key", "seal", "unseal", "delete_seal_key"}
    assert {n for n, _ in inspect.getmembers(Vault) if not n.startswith("_")} <= interface
    assert {n for n, _ in inspect.getmembers(SealingVault) if not n.startswith("_")} <= (
        interface | sealing
    )
    public = {n for n, _ in inspect.getmembers(SoftwareVault) if not n.startswith("_")}
    assert public == interface | sealing | {"key_batch", "rekey"}  # rekey: a count out
    batch = SoftwareVault().key_batch()  # a batch: handles and public keys out, no key bytes
    assert {n for n in dir(batch) if not n.startswith("_")} == interface | {"store", "discard"}


@pytest.mark.parametrize("key_type", [KeyType.ED25519, KeyType.P256])
def test_sign_survives_reopen(tmp_path: Path, key_type: KeyType) -> None:
    db, vault = open_vault(tmp_path / "v.db")
    with db.transaction():
        handle = vault.generate(key_type, KeyPurpose.PRIMARY)
    public = vault.public_key(handle)
    db.close()
    db, reopened = open_vault(tmp_path / "v.db")
    assert reopened.public_key(handle) == public
    verify_signature(public, reopened.sign(handle, b"data"), b"data")
    db.close()


def test_x25519_dh_agrees(tmp_path: Path) -> None:
    db, vault = open_vault(tmp_path / "v.db")
    a = vault.generate(KeyType.X25519, KeyPurpose.SECURE_CHANNEL)
    b = vault.generate(KeyType.X25519, KeyPurpose.SECURE_CHANNEL)
    assert vault.dh(a, vault.public_key(b)) == vault.dh(b, vault.public_key(a))
    with pytest.raises(CryptoError, match=r"X25519 keys cannot sign"):
        vault.sign(a, b"x")  # X25519 keys cannot sign
    db.close()


def test_private_key_is_not_stored_in_clear(tmp_path: Path) -> None:
    from troth.crypto.private import PrivateKey

    db, vault = open_vault(tmp_path / "v.db")
    handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    private: PrivateKey = vault._cache[handle.key_id]  # white-box: the raw key, for the search
    raw = private.private_bytes()
    db.close()
    for path in tmp_path.iterdir():
        assert raw not in path.read_bytes(), path


def test_wrong_kek_fails_at_open(tmp_path: Path) -> None:
    db, _ = open_vault(tmp_path / "v.db")
    db.close()
    with pytest.raises(ConfigError, match="does not open this vault"):
        open_vault(tmp_path / "v.db", kek=bytes(32))


def test_tampered_sealed_key_refused(tmp_path: Path) -> None:
    db, vault = open_vault(tmp_path / "v.db")
    handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    (sealed,) = db.fetch_one("SELECT sealed FROM vault_keys")
    tampered = sealed[:20] + bytes([sealed[20] ^ 1]) + sealed[21:]
    db.execute("UPDATE vault_keys SET sealed = ?", (tampered,))
    db.close()
    db, reopened = open_vault(tmp_path / "v.db")
    with pytest.raises(VaultError, match="failed to unseal"):
        reopened.sign(handle, b"x")
    db.close()


def test_swapped_rows_refused(tmp_path: Path) -> None:
    """The AAD binds a sealed key to its key id: swapping ciphertexts between rows is caught."""
    db, vault = open_vault(tmp_path / "v.db")
    a = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    b = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    rows = dict(db.execute("SELECT key_id, sealed FROM vault_keys").fetchall())
    id_a, id_b = int(a.key_id, 16), int(b.key_id, 16)
    db.execute("UPDATE vault_keys SET sealed = ? WHERE key_id = ?", (rows[id_b], id_a))
    db.close()
    db, reopened = open_vault(tmp_path / "v.db")
    with pytest.raises(VaultError, match=r"failed to unseal \(tampered or another KEK\)"):
        reopened.sign(a, b"x")
    db.close()


def test_purpose_is_bound(tmp_path: Path) -> None:
    db, vault = open_vault(tmp_path / "v.db")
    handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    db.execute("UPDATE vault_keys SET purpose = 0")
    db.close()
    db, reopened = open_vault(tmp_path / "v.db")
    with pytest.raises(VaultError, match=r"failed to unseal \(tampered or another KEK\)"):
        reopened.sign(handle, b"x")
    db.close()


def test_delete_and_unknown_handles(tmp_path: Path) -> None:
    db, vault = open_vault(tmp_path / "v.db")
    handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    vault.delete(handle)
    with pytest.raises(KeyNotFound, match=r"no key software:ed25519"):
        vault.sign(handle, b"x")
    with pytest.raises(KeyNotFound, match=r"no key software:ed25519"):
        vault.delete(handle)
    for bogus in ("software:ed25519:zz", "pkcs11:ed25519:00", "software:ed25519:0000000000000001"):
        with pytest.raises(KeyNotFound):
            vault.sign(KeyHandle.parse(bogus), b"x")
    db.close()


def test_ephemeral_vault_keeps_nothing() -> None:
    vault = SoftwareVault()
    handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    verify_signature(vault.public_key(handle), vault.sign(handle, b"x"), b"x")
    assert SoftwareVault() is not vault
    with pytest.raises(KeyNotFound, match=r"no key software:ed25519"):
        SoftwareVault().sign(handle, b"x")


def test_persistent_vault_needs_a_kek(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "v.db")
    with pytest.raises(ConfigError, match=r"a persistent software vault needs a"):
        SoftwareVault(SqliteKeyStore(db), None)
    with pytest.raises(ConfigError, match=r"a persistent software vault needs a"):
        SoftwareVault(SqliteKeyStore(db), b"short")
    db.close()


def test_cache_eviction_reloads_from_store(tmp_path: Path) -> None:
    from troth.vault import software

    db, vault = open_vault(tmp_path / "v.db")
    with db.transaction():
        handles = [
            vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
            for _ in range(software._CACHE_SIZE + 5)
        ]
    assert handles[0].key_id not in vault._cache
    verify_signature(vault.public_key(handles[0]), vault.sign(handles[0], b"x"), b"x")
    db.close()


def test_key_numbers_increase(tmp_path: Path) -> None:
    db, vault = open_vault(tmp_path / "v.db")
    numbers = [
        int(vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY).key_id, 16) for _ in range(50)
    ]
    assert numbers == sorted(set(numbers))
    db.close()


def test_database_file_mode(tmp_path: Path) -> None:
    db, vault = open_vault(tmp_path / "v.db")
    vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    db.close()


def test_batch_keys_work_at_once_and_are_stored_together(tmp_path: Path) -> None:
    db, vault = open_vault(tmp_path / "v.db")
    with db.transaction():
        batch = vault.key_batch()
        handles = [batch.generate(KeyType.ED25519, KeyPurpose.PRIMARY) for _ in range(300)]
        verify_signature(batch.public_key(handles[0]), batch.sign(handles[0], b"x"), b"x")
        assert db.fetch_one("SELECT count(*) FROM vault_keys")[0] == 0  # not before store()
        batch.store()  # more rows than one INSERT statement takes
    publics = [vault.public_key(h) for h in handles]
    db.close()
    db, reopened = open_vault(tmp_path / "v.db")
    assert [reopened.public_key(h) for h in handles] == publics
    verify_signature(publics[-1], reopened.sign(handles[-1], b"y"), b"y")
    db.close()


def test_every_key_of_a_batch_has_its_own_nonce(tmp_path: Path) -> None:
    """A batch reads its nonces from the OS many at a time: no two keys share one."""
    db, vault = open_vault(tmp_path / "v.db")
    with db.transaction():
        batch = vault.key_batch()
        for _ in range(200):  # several reads of nonces
            batch.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
        batch.store()
    nonces = [bytes(row[0][1:13]) for row in db.fetch_all("SELECT sealed FROM vault_keys")]
    assert len(nonces) == 200
    assert len(set(nonces)) == 200
    db.close()


def test_discarded_and_deleted_batch_keys_are_never_stored(tmp_path: Path) -> None:
    db, vault = open_vault(tmp_path / "v.db")
    with db.transaction():
        batch = vault.key_batch()
        discarded = batch.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
        batch.discard()
        kept = batch.generate(KeyType.P256, KeyPurpose.SIGNING)
        deleted = batch.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
        batch.delete(deleted)
        batch.store()
    for gone in (discarded, deleted):
        with pytest.raises(KeyNotFound, match=r"no key software:ed25519"):
            vault.sign(gone, b"x")
    db.close()
    db, reopened = open_vault(tmp_path / "v.db")
    assert db.fetch_one("SELECT count(*) FROM vault_keys")[0] == 1
    verify_signature(reopened.public_key(kept), reopened.sign(kept, b"x"), b"x")
    db.close()


def test_a_batch_never_takes_a_number_another_process_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes whose clocks and random bits agree pick the same key numbers; a batch
    (made inside its write transaction) numbers its keys above every stored one, so its
    multi-row insert cannot collide with the keys another process stored before it."""
    monkeypatch.setattr(time, "time_ns", lambda: 1_800_000_000_000_000_000)
    monkeypatch.setattr(os, "urandom", lambda size: bytes(size))
    db, vault = open_vault(tmp_path / "v.db")
    other_db, other = open_vault(tmp_path / "v.db")  # another process's vault on the same file
    theirs = [other.generate(KeyType.ED25519, KeyPurpose.PRIMARY) for _ in range(3)]
    with db.transaction():
        batch = vault.key_batch()
        mine = [batch.generate(KeyType.ED25519, KeyPurpose.PRIMARY) for _ in range(3)]
        batch.store()
    assert not {h.key_id for h in mine} & {h.key_id for h in theirs}
    other_db.close()
    db.close()
    db, reopened = open_vault(tmp_path / "v.db")
    for handle in (*theirs, *mine):
        verify_signature(reopened.public_key(handle), reopened.sign(handle, b"x"), b"x")
    db.close()


def test_a_vault_without_batches_stores_each_key_and_discard_deletes_them() -> None:
    class Plain:  # any Vault: no key_batch of its own
        def __init__(self, inner: SoftwareVault) -> None:
            self.name = inner.name
            self.generate = inner.generate
            self.public_key = inner.public_key
            self.sign = inner.sign
            self.dh = inner.dh
            self.delete = inner.delete

    inner = SoftwareVault()
    batch = key_batch(Plain(inner))
    stored = batch.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    batch.store()
    dropped = batch.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    batch.discard()
    verify_signature(inner.public_key(stored), inner.sign(stored, b"x"), b"x")
    with pytest.raises(KeyNotFound, match=r"no key software:ed25519"):
        inner.sign(dropped, b"x")
