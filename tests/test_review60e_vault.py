"""Review 60e, the software vault: what it raises for handles and rows it does not hold.

Every layer holds key handles, parsed from text (node.db's identity rows, retired-key records,
a broker's seal key) and handed to the vault, which answers with its typed errors: KeyNotFound
for a key it does not hold, VaultError for a row that does not match its record. Two inputs got
an untyped exception out of the persistent software vault instead (the in-memory vault the
decoder fuzzing uses, tests/test_decoders_mutated_vault.py, answers before reaching either).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from troth.crypto import KeyType
from troth.errors import KeyNotFound, VaultError
from troth.node import Node
from troth.node.node import init_node, open_node
from troth.storage import SqliteDatabase, SqliteKeyStore
from troth.vault import KeyHandle, KeyPurpose, SealKey, SoftwareVault

_KEK = bytes(range(32))
_PAST_ROWS = ("8000000000000000", "ffffffffffffffff")
"""Key ids in the one spelling (16 lowercase hex digits) past SQLite's largest INTEGER."""


@pytest.fixture(name="stored")
def stored_fixture(tmp_path: Path) -> Iterator[tuple[SqliteDatabase, SoftwareVault]]:
    db = SqliteDatabase(tmp_path / "node.db")
    try:
        yield db, SoftwareVault(SqliteKeyStore(db), _KEK)
    finally:
        db.close()


@pytest.mark.parametrize("key_id", _PAST_ROWS)
def test_a_key_id_past_the_largest_row_number_names_no_key(
    stored: tuple[SqliteDatabase, SoftwareVault], key_id: str
) -> None:
    """Review 60e, vault 1. A software key id is 16 hex digits naming a 63-bit key number, and
    every 16-digit spelling passed the vault's check (`_key_number`), those from 8000000000000000
    up too, which no row can have: SQLite was asked for them and the sqlite3 module raised a
    bare OverflowError (`Python int too large to convert to SQLite INTEGER`) from sign,
    public_key, dh, delete, seal, unseal and delete_seal_key. The CLI reported it as an internal
    error (exit 70), and a retired-key record naming one (below) stopped every maintenance
    round's deletion of retired keys at it. Was a strict xfail until such an id named no key."""
    _, vault = stored
    for key_type in (KeyType.ED25519, KeyType.X25519):
        handle = KeyHandle(vault.name, key_type, key_id)
        with pytest.raises(KeyNotFound):
            vault.sign(handle, b"data")
        with pytest.raises(KeyNotFound):
            vault.public_key(handle)
        with pytest.raises(KeyNotFound):
            vault.delete(handle)
    seal_key = SealKey(vault.name, key_id)
    with pytest.raises(KeyNotFound):
        vault.seal(seal_key, b"plaintext", b"aad")
    with pytest.raises(KeyNotFound):
        vault.delete_seal_key(seal_key)


def test_a_retired_key_record_past_the_largest_row_number_is_dropped(
    troth_home: Path,
) -> None:
    """Review 60e, vault 1, where it hurt: `forget_retired` (after each rotation's commit, and
    in a running node's maintenance round) takes KeyNotFound as "gone already" and drops the
    record; the OverflowError escaped it instead, and no record of the call was dropped, this one
    or those before it, at any call."""
    init_node("n")
    with open_node("n") as node:
        _plant_retired(node, f"software:x25519:{_PAST_ROWS[1]}")
        assert node.identities.forget_retired() == 1
        assert node.identities.store.retired_key_records(10) == []


@pytest.mark.parametrize("purpose", [256, -1])
def test_a_row_of_no_purpose_is_a_vault_error(
    stored: tuple[SqliteDatabase, SoftwareVault], purpose: int
) -> None:
    """Review 60e, vault 2. A sealed row's purpose is bound in its AAD as one byte; a row whose
    purpose is none troth makes (a damaged or edited node.db) was unsealed with an AAD built
    from it: past a byte, `bytes(...)` raised a bare ValueError (`bytes must be in range(0,
    256)`) from sign and public_key, where any other mismatch of a row with its record is a
    VaultError. Was a strict xfail until such a row was refused as not matching its record."""
    db, vault = stored
    handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    db.execute("UPDATE vault_keys SET purpose = ?", (purpose,))
    reopened = SoftwareVault(SqliteKeyStore(db), _KEK)  # no cached key
    with pytest.raises(VaultError):
        reopened.sign(handle, b"data")
    with pytest.raises(VaultError):
        reopened.public_key(handle)


def _plant_retired(node: Node, record: str) -> None:
    store = node.identities.store
    with store.transaction():
        store.add_retired_keys([record])
