"""Review 50a, rotate: a key's deletion wrote a second row (c0943b1: a `deleted_keys` count in
`vault_meta`, upserted in each deletion's transaction, read by other connections' software
vaults to tell whether a cached key may be gone): one more statement and WAL page for every
rotation (`identity.rotate` ~2.06x its floor, ~1.91x without it). The vault now tells from
`vault_keys` itself, with no write: after another connection's commit, the keys a thread saw
stored are looked up again together, in one read (docs/vault.md, "Keys deleted by another
process"). Review 48l's guarantee stays: a key deleted by any connection is used by none."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from troth.crypto import KeyType
from troth.errors import KeyNotFound
from troth.storage.sqlite import SqliteDatabase
from troth.storage.sqlite_stores import SqliteKeyStore
from troth.vault import KeyHandle, KeyPurpose
from troth.vault.software import _RECHECK_KEYS, SoftwareVault

KEK = bytes(range(32))


def _vaults(tmp_path: Path) -> tuple[SoftwareVault, SoftwareVault, SqliteDatabase]:
    """Two vaults over one node.db, each on a connection of its own (two processes), and the
    second's database (its statements are traced)."""
    path = tmp_path / "node.db"
    first = SoftwareVault(SqliteKeyStore(SqliteDatabase(path)), KEK)
    second_db = SqliteDatabase(path)
    return first, SoftwareVault(SqliteKeyStore(second_db), KEK), second_db


def _statements(db: SqliteDatabase) -> list[str]:
    """Every statement this thread's connection of `db` runs from now on."""
    seen: list[str] = []
    db.connection().set_trace_callback(seen.append)
    return seen


def _signing_keys(vault: SoftwareVault, count: int) -> list[KeyHandle]:
    return [vault.generate(KeyType.ED25519, KeyPurpose.SIGNING) for _ in range(count)]


def test_a_deletion_writes_the_keys_row_and_nothing_else(tmp_path: Path) -> None:
    """rotate 1: a deletion's only write is the key's row (no count beside it: every rotation
    deletes a key, and the count's row cost it one more statement and WAL page)."""
    path = tmp_path / "node.db"
    db = SqliteDatabase(path)
    vault = SoftwareVault(SqliteKeyStore(db), KEK)
    handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    meta_before = db.fetch_all("SELECT name, value FROM vault_meta ORDER BY name")
    statements = _statements(db)
    vault.delete(handle)
    db.connection().set_trace_callback(None)
    writes = [s for s in statements if not s.lstrip().upper().startswith(("SELECT", "PRAGMA"))]
    number, key_type = int(handle.key_id, 16), int(handle.key_type)
    deletion = f"DELETE FROM vault_keys WHERE key_id = {number} AND key_type = {key_type}"  # noqa: S608
    assert writes == [deletion]
    assert db.fetch_all("SELECT name, value FROM vault_meta ORDER BY name") == meta_before


def test_a_foreign_commit_costs_one_read_for_every_key_the_thread_saw(tmp_path: Path) -> None:
    """A commit elsewhere that deleted no key (a node's storage thread between handshakes):
    the keys this thread saw are looked up together, once, not one look-up per key used."""
    first, second, second_db = _vaults(tmp_path)
    handles = _signing_keys(first, 4)
    for handle in handles:
        second.sign(handle, b"seen")
    first.generate(KeyType.ED25519, KeyPurpose.SIGNING)  # another connection commits
    statements = _statements(second_db)
    for handle in handles:
        second.sign(handle, b"again")
    second_db.connection().set_trace_callback(None)
    reads = [s for s in statements if "vault_keys" in s]
    assert len(reads) == 1
    assert reads[0].startswith(
        "SELECT key_id, substr(sealed, 2, 12) FROM vault_keys WHERE key_id IN ("
    )


def test_a_key_deleted_and_another_made_in_the_same_interval_is_refused(tmp_path: Path) -> None:
    """Attack on a count of rows: one key deleted and one made between two uses leave the
    table's count (and, for a key numbered below the largest, its largest number) as they
    were. Refuted: the look-up asks for each seen key's own row."""
    first, second, _ = _vaults(tmp_path)
    low, kept = _signing_keys(first, 2)
    second.sign(low, b"seen")
    second.sign(kept, b"seen")
    first.delete(low)
    first.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    with pytest.raises(KeyNotFound):
        second.sign(low, b"after")
    second.sign(kept, b"after")


def test_past_the_recheck_bound_each_key_is_looked_up_at_its_next_use(tmp_path: Path) -> None:
    """A thread that saw more than _RECHECK_KEYS keys forgets them all at a foreign commit and
    looks each up again when used: a deleted one is refused, the others sign."""
    first, second, _ = _vaults(tmp_path)
    handles = _signing_keys(first, _RECHECK_KEYS + 1)
    for handle in handles:
        second.public_key(handle)
    first.delete(handles[0])
    with pytest.raises(KeyNotFound):
        second.sign(handles[0], b"after")
    second.sign(handles[-1], b"after")


def test_a_failed_look_up_leaves_the_next_use_to_ask_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look-up after a foreign commit fails (node.db busy, unreadable): the thread's
    record of what it saw is not moved on, so the next use looks the keys up again and
    refuses one deleted meanwhile."""
    first, second, _ = _vaults(tmp_path)
    gone, kept = _signing_keys(first, 2)
    second.sign(gone, b"seen")
    second.sign(kept, b"seen")
    first.delete(gone)
    store = second._store
    assert store is not None

    def failing(_numbers: object) -> dict[int, bytes]:
        raise sqlite3.OperationalError("database is locked")

    with monkeypatch.context() as patched:
        patched.setattr(store, "stored_key_nonces", failing)
        with pytest.raises(sqlite3.OperationalError):
            second.sign(gone, b"after")
    with pytest.raises(KeyNotFound):
        second.sign(gone, b"after")
    second.sign(kept, b"after")
