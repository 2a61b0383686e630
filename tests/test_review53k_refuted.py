"""Review 53k: attacks tried that the code withstood."""

from __future__ import annotations

from pathlib import Path

import pytest

from troth.errors import StorageError
from troth.node import Node
from troth.node.node import init_node, open_node
from troth.vault import KeyPurpose

NOW = 1_800_000_000


def _vault_keys(node: Node) -> int:
    return int(node.db.fetch_one("SELECT count(*) FROM vault_keys")[0])


def _fail(*_args: object, **_kwargs: object) -> None:
    raise StorageError("injected: the disk failed")


def test_a_software_vault_keeps_no_key_of_a_failed_renewal_or_rotation(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pkcs11 1-2 on the software vault: its keys are rows of node.db, written in the
    renewal's or the rotation's transaction, so the rollback of a failed one takes them."""
    init_node("soft")
    with open_node("soft") as node:
        node.identities.create(now=NOW, name="agent")
        node.identities.purpose_key("agent", KeyPurpose.SIGNING, now=NOW)
        before = _vault_keys(node)
        store = node.identities.store
        monkeypatch.setattr(store, "put_purpose_key", _fail)
        renew_at = NOW + node.identities.purpose_key_ttl - 3600
        with pytest.raises(StorageError):
            node.identities.purpose_key("agent", KeyPurpose.SIGNING, now=renew_at)
        monkeypatch.setattr(store, "take_purpose_keys", _fail)
        with pytest.raises(StorageError):
            node.identities.rotate("agent", now=NOW + 10, compromised=True)
        assert _vault_keys(node) == before
