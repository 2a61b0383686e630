"""Review 48d, the vault: attacks tried that failed (the code was right). Private key bytes
never leave troth.vault (no pickling, no repr, no other module that reads them); a sealed row
moved within a node does not unseal; a rotation killed at each of its steps leaves the
identity signing with its current key, the retired keys gone from the vault, and a thief's
pre-rotation copy refused by a verifier that holds the new history."""

from __future__ import annotations

import copy
import pickle
import re
import time
from pathlib import Path

import pytest

from tests.support.cli import run, run_json, troth_process
from tests.test_vault_rekey import copy_node, node_path, rows
from troth.crypto import KeyType, verify_signature
from troth.crypto.private import generate_private_key
from troth.errors import KeyNotFound, VaultError
from troth.faults import CRASH_EXIT_CODE
from troth.node import open_node
from troth.storage import SqliteDatabase
from troth.vault import KeyHandle, KeyPurpose, SoftwareVault

SRC = Path(__file__).resolve().parent.parent / "src" / "troth"


@pytest.mark.parametrize("key_type", list(KeyType))
def test_a_private_key_is_not_pickled_and_its_repr_holds_no_key_bytes(key_type: KeyType) -> None:
    key = generate_private_key(key_type)
    raw = key.private_bytes()
    for text in (repr(key), str(key)):
        assert raw.hex() not in text
        assert "PrivateKey object at" in text
    with pytest.raises(TypeError):
        pickle.dumps(key)
    vault = SoftwareVault()
    vault.generate(key_type, KeyPurpose.PRIMARY)
    with pytest.raises(TypeError):  # the vault's cache with it
        pickle.dumps(vault)
    assert "SoftwareVault object at" in repr(vault)
    assert copy.copy(key).private_bytes() == raw  # a copy stays a PrivateKey, in the vault


def _modules_mentioning(pattern: str) -> set[str]:
    found = set()
    for file in SRC.rglob("*.py"):
        if re.search(pattern, file.read_text(encoding="utf-8")):
            found.add(file.relative_to(SRC).as_posix())
    return found


def test_only_the_vault_reads_private_key_bytes() -> None:
    """The project's rule, checked over the whole source tree: the software private key class
    is imported by troth.vault alone, `private_bytes()` (its raw value) is called only by the
    software vault, and cryptography.hazmat only by troth.crypto (whose bench modules make
    keys of their own for a benchmark)."""
    importers = _modules_mentioning(r"troth\.crypto\.private\b") - {"crypto/private.py"}
    assert importers <= {"vault/software.py", "vault/ephemeral.py", "vault/pkcs11.py"}
    callers = _modules_mentioning(r"\.private_bytes\(")
    assert callers <= {"vault/software.py", "crypto/private.py", "crypto/bench_tls.py"}
    hazmat = _modules_mentioning(r"cryptography\.hazmat")
    assert {m for m in hazmat if not m.startswith("crypto/")} == set()


def _two_identities(home: Path) -> tuple[Path, KeyHandle, KeyHandle]:
    run("node", "create", "n")
    run("identity", "create", "alice", "--node", "n")
    run("identity", "create", "bob", "--node", "n")
    with open_node("n") as node:
        now = int(time.time())
        alice = node.identities.get("alice", now=now).primary_key
        bob = node.identities.get("bob", now=now).primary_key
    return node_path(home), alice, bob


_UPDATES = {
    "sealed": "UPDATE vault_keys SET sealed = ? WHERE key_id = ?",
    "purpose": "UPDATE vault_keys SET purpose = ? WHERE key_id = ?",
}


def _set_row(path: Path, key_number: int, column: str, value: object) -> None:
    db = SqliteDatabase(path / "node.db")
    try:
        db.execute(_UPDATES[column], (value, key_number))
    finally:
        db.close()


def test_a_sealed_row_moved_to_another_identitys_key_does_not_unseal(troth_home: Path) -> None:
    """Bob's primary key's sealed blob written over alice's row (a node.db writer without the
    KEK): alice's handle unseals nothing (the AAD binds the key id), so her identity cannot be
    made to sign with bob's key; nor does a row whose purpose is changed (the AAD binds it)."""
    path, alice, bob = _two_identities(troth_home)
    sealed = {number: blob for number, _t, _p, blob in rows(path)}
    _set_row(path, int(alice.key_id, 16), "sealed", sealed[int(bob.key_id, 16)])
    with open_node("n") as node:
        with pytest.raises(VaultError, match="failed to unseal"):
            node.vault.sign(alice, b"as alice")
        signature = node.vault.sign(bob, b"as bob")
        verify_signature(node.vault.public_key(bob), signature, b"as bob")
    _set_row(path, int(bob.key_id, 16), "purpose", int(KeyPurpose.SIGNING))
    with open_node("n") as node, pytest.raises(VaultError, match="failed to unseal"):
        node.vault.sign(bob, b"as bob")


@pytest.mark.parametrize("point", ["identity.rotate.before-commit", "identity.rotate.after-commit"])
@pytest.mark.parametrize("compromised", [False, True])
def test_a_rotation_killed_at_each_step_keeps_one_current_key(
    troth_home: Path, point: str, compromised: bool
) -> None:
    run("node", "create", "n")
    run("node", "create", "v")
    run("identity", "create", "agent", "--node", "n")
    path = node_path(troth_home)
    before = troth_home / "before.id"
    run("identity", "export", "agent", "--out", str(before), "--node", "n")
    run("identity", "import", str(before), "--node", "v")
    copy_node(path, node_path(troth_home, "thief"))  # a backup taken before the rotation
    with open_node("n") as node:
        old = node.identities.get("agent", now=int(time.time()))
    flags = ["--compromised"] if compromised else []
    troth_process(
        "identity", "rotate", "agent", *flags, "--node", "n", crash=point, code=CRASH_EXIT_CODE
    )
    committed = point.endswith("after-commit")
    with open_node("n") as node:
        now = int(time.time())
        local = node.identities.get("agent", now=now)
        assert local.identity.change_count == old.identity.change_count + (
            (2 if compromised else 1) if committed else 0
        )
        current = local.identity.current_key
        assert node.vault.public_key(local.primary_key) == current
        signer = node.identities.signer("agent", now=now)
        signer.sign(b"signs with the current key")
        retired = [old.primary_key, *([old.next_key] if compromised else [])]
        for handle in retired:
            if committed:
                with pytest.raises(KeyNotFound):
                    node.vault.public_key(handle)
            else:
                node.vault.public_key(handle)
        held = {int(h.key_id, 16) for h in (local.primary_key, local.next_key)}
    numbers = {number for number, *_ in rows(path)}
    assert held <= numbers
    if committed:
        assert not {int(h.key_id, 16) for h in retired} & numbers
    after = troth_home / "after.id"
    run("identity", "export", "agent", "--out", str(after), "--node", "n")
    run("identity", "import", str(after), "--node", "v")
    stolen = troth_home / "stolen.id"
    run("identity", "export", "agent", "--out", str(stolen), "--node", "thief")
    # the thief's pre-rotation history: a rollback of the copy v holds once it rotated
    run("identity", "import", str(stolen), "--node", "v", code=1 if committed else 0)
    run_json("identity", "rotate", "agent", "--node", "n")  # and rotates again
