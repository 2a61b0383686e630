"""Review 55d, the software vault: what a stolen backup of a node (node.db with vault.key) still
opens after the documented recovery (docs/vault.md, "Recovering from a stolen backup")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_vault_rekey import copy_node, make_node
from troth.errors import VaultError
from troth.node import Node, open_node
from troth.node.rekey import rekey_vault
from troth.storage import SqliteDatabase, SqliteKeyStore
from troth.vault import SealingVault, SealKey, SoftwareVault

_AAD = b"a secret's place"


def _sealing(node: Node) -> SealingVault:
    assert isinstance(node.vault, SealingVault)  # a software node's
    return node.vault


def _stolen_unseal(backup: Path, key: SealKey, sealed: bytes) -> bytes:
    """What the holder of the copy `backup` unseals of `sealed` (VaultError if nothing)."""
    db = SqliteDatabase(backup / "node.db")
    try:
        thief = SoftwareVault(SqliteKeyStore(db), (backup / "vault.key").read_bytes())
        return thief.unseal(key, sealed, _AAD)
    finally:
        db.close()


def test_data_sealed_after_the_recovery_is_not_opened_by_a_stolen_backup(
    troth_home: Path,
) -> None:
    """Review 55d, vault 1. A thief copies a software node directory (node.db and vault.key:
    every key, seal keys included, in the clear to them). The owner recovers as docs/vault.md
    says: `troth vault rekey` (the thief's vault.key opens nothing in a later node.db), then
    rotates. The rekey re-sealed every row under the new KEK, but a seal key's value stayed
    the one the thief unsealed from the backup: what the node sealed after the recovery (a
    secret the owner puts again, rotated since the theft) was sealed under it, so a later copy
    of node.db alone, which the rekey was to make useless to them, gave it away.

    Was a strict xfail until a rekey gave each seal key a fresh value that seals from then on.
    Since review 62i (rekey 1) the fresh value replaces those it had (a kept one let the copy's
    holder seal blobs the node took as its own): what the broker sealed in node.db is re-sealed
    under it by the rekey (`tests/test_review62i_rekey.py`); a blob kept elsewhere, as these,
    opens under nothing afterwards (docs/vault.md, "Changing the vault key")."""
    path = make_node(troth_home)
    with open_node("n") as node:
        seal_key = _sealing(node).generate_seal_key()
        before = _sealing(node).seal(seal_key, b"sealed before the theft", _AAD)
    backup = copy_node(path, troth_home / "stolen")
    assert _stolen_unseal(backup, seal_key, before) == b"sealed before the theft"
    rekey_vault("n", home=troth_home)
    with open_node("n") as node:
        vault = _sealing(node)
        after = vault.seal(seal_key, b"the upstream password, changed since", _AAD)
        assert vault.unseal(seal_key, after, _AAD) == b"the upstream password, changed since"
        with pytest.raises(VaultError):  # kept outside node.db: not re-sealed (review 62i)
            vault.unseal(seal_key, before, _AAD)
    with pytest.raises(VaultError):
        _stolen_unseal(backup, seal_key, after)
    rekey_vault("n", home=troth_home)  # another: again one fresh value, sealing
    with open_node("n") as node:
        vault = _sealing(node)
        again = vault.seal(seal_key, b"sealed after the second rekey", _AAD)
        assert vault.unseal(seal_key, again, _AAD) == b"sealed after the second rekey"
        with pytest.raises(VaultError):  # still one opaque failure for a tampered blob
            vault.unseal(seal_key, again[:-1] + bytes([again[-1] ^ 1]), _AAD)
