"""Review 48d, vault 1: the known item "a shared TROTH_VAULT_KEY allows a sealed-row swap",
examined and documented, not fixed (docs/vault.md, "What it does not protect against").

A sealed row's AAD binds it to its key id, key type and purpose (troth.vault.software), so no
row unseals at another key id, type or purpose of its own node (tests/test_review48d_refuted.py).
It does not bind the row to its node: two nodes keyed by the same TROTH_VAULT_KEY open each
other's rows, at the same key id. No binding kept in node.db would change what someone who can
write one node's node.db and read the other's gains: they copy the whole node.db (its
`vault_meta` and any node id in it included), and the node opens the other's keys as its own.
The one defence is a distinct vault key per node (the default `vault.key` is one)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.test_vault_rekey import node_path
from troth.crypto import verify_signature
from troth.errors import VaultError
from troth.node import open_node
from troth.storage import SqliteDatabase
from troth.vault import KeyHandle

SHARED, OTHER = "33" * 32, "44" * 32


def _primary(name: str) -> KeyHandle:
    with open_node(name) as node:
        return node.identities.get("agent", now=int(time.time())).primary_key


def _copy_row(src: Path, dst: Path, key_number: int) -> None:
    db = SqliteDatabase(src / "node.db")
    try:
        row = db.fetch_one("SELECT * FROM vault_keys WHERE key_id = ?", (key_number,))
    finally:
        db.close()
    assert row is not None
    db = SqliteDatabase(dst / "node.db")
    try:
        db.execute("INSERT INTO vault_keys VALUES (?, ?, ?, ?, ?)", tuple(row))
    finally:
        db.close()


@pytest.mark.parametrize("second_key", [SHARED, OTHER])
def test_a_row_copied_from_a_node_keyed_alike_opens_and_one_keyed_apart_does_not(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch, second_key: str
) -> None:
    monkeypatch.setenv("TROTH_VAULT_KEY", SHARED)
    run("node", "create", "a")
    run("identity", "create", "agent", "--node", "a")
    handle = _primary("a")
    with open_node("a") as node:
        public = node.vault.public_key(handle)
    monkeypatch.setenv("TROTH_VAULT_KEY", second_key)
    run("node", "create", "b")
    run("identity", "create", "own", "--node", "b")
    _copy_row(node_path(troth_home, "a"), node_path(troth_home, "b"), int(handle.key_id, 16))
    with open_node("b") as node:
        if second_key == SHARED:  # the documented limit: a's key signs in b
            verify_signature(public, node.vault.sign(handle, b"m"), b"m")
        else:  # a vault key per node: nothing of a's opens in b
            with pytest.raises(VaultError, match="failed to unseal"):
                node.vault.sign(handle, b"m")


def test_a_whole_node_db_copied_opens_under_a_shared_key(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why a node id in node.db binds nothing: the copy carries it. Node b, given a's node.db
    whole, opens a's identity and signs with its key under the shared vault key."""
    monkeypatch.setenv("TROTH_VAULT_KEY", SHARED)
    run("node", "create", "a")
    run("identity", "create", "agent", "--node", "a")
    run("node", "create", "b")
    run("identity", "create", "own", "--node", "b")
    handle = _primary("a")
    a, b = node_path(troth_home, "a"), node_path(troth_home, "b")
    for name in ("node.db-wal", "node.db-shm"):
        (b / name).unlink(missing_ok=True)
    shutil.copyfile(a / "node.db", b / "node.db")
    with open_node("b") as node:
        local = node.identities.get("agent", now=int(time.time()))
        assert local.primary_key == handle
        signature = node.vault.sign(handle, b"m")
        verify_signature(local.identity.current_key, signature, b"m")
