"""Review 66s (vault): findings.

vault 1 (low; fixed) — review 66g made `SoftwareVault.delete(handle)` refuse (KeyNotFound) a
handle whose key this process holds cached under another type, before asking the row: but a
cached key is stale once another process deleted it and a key batch gave its number to a key
of another type (review 50h: a clock stepped back). `sign` and `public_key` let the row decide
(they load the new key), `delete` refused it: the new key, its handle right, could not be
deleted by that process — a retired key kept for good. The row decides now (the type a
condition of the deletion, as 66g made it); the stale cached key is dropped with it, and a
handle of another type than the row's still deletes nothing.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.test_review50h_vault import _EPOCH_NS, _vault
from troth.crypto import KeyType
from troth.errors import KeyNotFound
from troth.vault import KeyHandle, KeyPurpose


def test_vault1_a_stale_cached_key_of_another_type_does_not_keep_the_new_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "node.db"
    mine, db = _vault(path)
    with db.transaction():
        batch = mine.key_batch()
        batch.generate(KeyType.ED25519, KeyPurpose.PRIMARY)  # the number below
        gone = batch.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
        batch.store()
    mine.sign(gone, b"cached here")
    other, other_db = _vault(path)  # another process, its clock stepped back
    monkeypatch.setattr(
        "troth.vault.software.time", SimpleNamespace(time_ns=lambda: _EPOCH_NS, time=time.time)
    )
    with other_db.transaction():
        other.delete(gone)
        batch = other.key_batch()
        new = batch.generate(KeyType.X25519, KeyPurpose.SECURE_CHANNEL)
        batch.store()
    monkeypatch.undo()
    assert new.key_id == gone.key_id  # the number came round again, another type
    with pytest.raises(KeyNotFound):
        mine.delete(KeyHandle(new.vault, KeyType.P256, new.key_id))  # another type: nothing
    mine.delete(new)  # and for a deletion
    for vault in (mine, other, _vault(path)[0]):
        with pytest.raises(KeyNotFound):
            vault.public_key(new)
    with pytest.raises(KeyNotFound):
        mine.sign(gone, b"deleted")
