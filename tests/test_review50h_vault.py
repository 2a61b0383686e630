"""Review 50h, vault: after review 50a a software vault told whether a key it caches was
deleted by another connection by asking whether the key's NUMBER still has a row. A number
deleted and then given to a different key between two uses (a key batch numbers its keys one
above the largest stored number: the deleted largest one comes round again when the clock
stepped back or within the same millisecond) still has a row, so the cache went on signing
with the deleted key (review 48l's guarantee: a key deleted by another process is used by no
one). The vault now remembers which row each cached key came from (its sealed blob's random
nonce) and compares it (docs/vault.md, "Keys deleted by another process")."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from troth.crypto import KeyType
from troth.crypto.keys import verify_signature
from troth.errors import InvalidSignature, KeyNotFound, VaultError
from troth.storage.sqlite import SqliteDatabase
from troth.storage.sqlite_stores import SqliteKeyStore
from troth.vault import KeyHandle, KeyPurpose
from troth.vault.software import _RECHECK_KEYS, SoftwareVault

KEK = bytes(range(32))
_EPOCH_NS = 1_735_689_600_000 * 1_000_000  # the key numbers' epoch: a clock stepped back


def _vault(path: Path) -> tuple[SoftwareVault, SqliteDatabase]:
    """A vault on a connection of its own (a process of its own) over node.db at `path`."""
    db = SqliteDatabase(path)
    return SoftwareVault(SqliteKeyStore(db), KEK), db


def _batch_pair(vault: SoftwareVault, db: SqliteDatabase) -> tuple[KeyHandle, KeyHandle]:
    """Two signing keys numbered one after the other (one key batch), stored."""
    with db.transaction():
        batch = vault.key_batch()
        low = batch.generate(KeyType.ED25519, KeyPurpose.SIGNING)
        high = batch.generate(KeyType.ED25519, KeyPurpose.SIGNING)
        batch.store()
    assert int(high.key_id, 16) == int(low.key_id, 16) + 1
    return low, high


def _reuse_number(
    path: Path, gone: KeyHandle, monkeypatch: pytest.MonkeyPatch
) -> tuple[KeyHandle, SoftwareVault]:
    """Another process, its clock stepped back, deletes `gone` (the largest stored number) and
    makes a new key in a batch: the batch numbers it one above the largest stored, `gone`'s."""
    other, db = _vault(path)
    monkeypatch.setattr(
        "troth.vault.software.time", SimpleNamespace(time_ns=lambda: _EPOCH_NS, time=time.time)
    )
    with db.transaction():
        other.delete(gone)
        batch = other.key_batch()
        new = batch.generate(KeyType.ED25519, KeyPurpose.SIGNING)
        batch.store()
    monkeypatch.undo()
    assert new.key_id == gone.key_id  # the number came round again
    return new, other


def test_a_key_number_deleted_and_given_to_another_key_does_not_sign_with_the_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """vault 1: A caches key N; B deletes N and a key batch gives N to a new key. A's next use
    of N must not sign with the deleted key: it loads the new row (or refuses)."""
    path = tmp_path / "node.db"
    maker, maker_db = _vault(path)
    _low, high = _batch_pair(maker, maker_db)
    user, _ = _vault(path)
    old_public = user.public_key(high)
    user.sign(high, b"cached")
    new, other = _reuse_number(path, high, monkeypatch)
    new_public = other.public_key(new)
    assert new_public != old_public
    signature = user.sign(high, b"after")
    with pytest.raises(InvalidSignature):
        verify_signature(old_public, signature, b"after")
    verify_signature(new_public, signature, b"after")
    assert user.public_key(high) == new_public


def test_the_single_look_up_compares_the_row_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """vault 1, past the grouped look-up's bound (each key looked up at its next use): the
    number's row being there is not enough either, it must be the cached key's row."""
    path = tmp_path / "node.db"
    maker, maker_db = _vault(path)
    for _ in range(_RECHECK_KEYS // 2 + 1):  # more seen keys than one look-up takes
        _batch_pair(maker, maker_db)
    _low, high = _batch_pair(maker, maker_db)
    user, _ = _vault(path)
    for key_id in [f"{n:016x}" for (n,) in maker_db.fetch_all("SELECT key_id FROM vault_keys")]:
        user.public_key(KeyHandle(user.name, KeyType.ED25519, key_id))
    old_public = user.public_key(high)
    new, other = _reuse_number(path, high, monkeypatch)
    assert user.public_key(high) == other.public_key(new) != old_public


def test_a_seal_key_number_given_to_another_row_does_not_seal_with_the_old(
    tmp_path: Path,
) -> None:
    """vault 1, seal keys: A caches seal key N; B deletes it and writes another row at N (here
    another seal key's row copied there, through the store). A seals nothing more under the
    deleted key: the row now at N is loaded (it does not unseal there: refused)."""
    path = tmp_path / "node.db"
    maker, maker_db = _vault(path)
    seal_key = maker.generate_seal_key()
    spare = maker.generate_seal_key()
    user, _ = _vault(path)
    sealed = user.seal(seal_key, b"secret", b"aad")
    number, spare_number = int(seal_key.key_id, 16), int(spare.key_id, 16)
    with maker_db.transaction():
        maker_db.execute("DELETE FROM vault_keys WHERE key_id = ?", (number,))
        maker_db.execute(
            "INSERT INTO vault_keys SELECT ?, key_type, purpose, sealed, created_at "
            "FROM vault_keys WHERE key_id = ?",
            (number, spare_number),
        )
    with pytest.raises((VaultError, KeyNotFound)):
        user.unseal(seal_key, sealed, b"aad")


def test_a_rekey_keeps_the_rekeying_vaults_cached_keys_its_own(tmp_path: Path) -> None:
    """A rekey re-seals every row under a fresh nonce: the rekeying vault records its cached
    keys' new rows, so after another connection's commit they are still its own (no row read
    and unsealed again, no key dropped)."""
    path = tmp_path / "node.db"
    vault, db = _vault(path)
    handles = [vault.generate(KeyType.ED25519, KeyPurpose.SIGNING) for _ in range(3)]
    seal_key = vault.generate_seal_key()
    with db.transaction():
        assert vault.rekey(bytes(range(1, 33))) == 4
    writer = SqliteDatabase(path)  # another connection commits: the data version moves
    writer.execute("INSERT INTO vault_meta VALUES ('other', x'00')")
    seen: list[str] = []
    db.connection().set_trace_callback(seen.append)
    for handle in handles:
        vault.sign(handle, b"after the rekey")
    vault.unseal(seal_key, vault.seal(seal_key, b"secret", b"aad"), b"aad")
    db.connection().set_trace_callback(None)
    assert [s for s in seen if "vault_keys" in s and "sealed FROM" in s] == []
    assert len([s for s in seen if "vault_keys" in s]) == 1  # the one grouped look-up


def test_storing_a_key_writes_its_row_and_nothing_else(tmp_path: Path) -> None:
    """The row a cached key came from is told by its sealed value's nonce, already in the
    row: a key's insertion (one or a batch) writes only the key's row, no counter beside it."""
    vault, db = _vault(tmp_path / "node.db")
    seen: list[str] = []
    db.connection().set_trace_callback(seen.append)
    vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    with db.transaction():
        batch = vault.key_batch()
        batch.generate(KeyType.X25519, KeyPurpose.SECURE_CHANNEL)
        batch.store()
    db.connection().set_trace_callback(None)
    writes = [
        s
        for s in seen
        if not s.lstrip().upper().startswith(("SELECT", "PRAGMA", "BEGIN", "COMMIT", "SAVEPOINT"))
        and not s.lstrip().upper().startswith("RELEASE")
    ]
    assert [w.split(" VALUES")[0] for w in writes] == ["INSERT INTO vault_keys"] * 2
