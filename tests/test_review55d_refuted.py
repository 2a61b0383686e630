"""Review 55d, vaults and the key lifecycle: attacks tried that failed (the code was right).
Each test is a real attempt that fails if the defence it names breaks."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SoftHsm
from tests.support.cli import run
from tests.support.hsm import NOW as HSM_NOW
from tests.support.hsm import agent_node_fixture, vault_fixture  # noqa: F401  (fixtures)
from tests.test_vault_rekey import copy_node, make_node, rows
from troth.crypto import KeyType, verify_signature
from troth.errors import ConfigError, KeyNotFound, TrothError, VaultError
from troth.node import Node, open_node
from troth.node.rekey import rekey_vault
from troth.storage import SqliteDatabase
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault

# another process with the PIN that retires a key and destroys it (a rotation in the CLI
# beside a running node): argv = module, token label, PIN, handle
_DESTROY = """
import sys
from troth.vault import KeyHandle, KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault
vault = Pkcs11Vault(sys.argv[1], sys.argv[2], sys.argv[3])
handle = KeyHandle.parse(sys.argv[4])
vault.delete_retired(handle, vault.retire(handle, KeyPurpose.SIGNING))
print("destroyed")
"""


def test_a_token_key_another_process_destroyed_signs_nothing_from_a_cached_object(
    softhsm: SoftHsm, vault: Pkcs11Vault
) -> None:
    """docs/vault.md left the PKCS#11 vault's cached object handles unexamined (review 48l):
    a vault that signed with a key keeps its object, and another process (the CLI rotating
    beside a running node) destroys the key. The token refuses the stale object (SoftHSM2
    2.6.1: ObjectHandleInvalid), and a fresh look-up finds no key: the retired key signs
    nothing here, through the cache or not."""
    handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    verify_signature(vault.public_key(handle), vault.sign(handle, b"before"), b"before")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _DESTROY,
            softhsm.module,
            softhsm.token_label,
            softhsm.pin,
            str(handle),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.strip() == "destroyed", done.stderr
    with pytest.raises(VaultError, match="ObjectHandleInvalid"):
        vault.sign(handle, b"after")  # the cached object
    vault._objects.clear()
    with pytest.raises(KeyNotFound):
        vault.sign(handle, b"after")  # looked up again


def test_a_rotated_identitys_old_keys_sign_nothing_through_the_token_vault(node: Node) -> None:
    """The promise after a rotation, through the vault API itself: on a PKCS#11 node the old
    primary key and the old signing key (retired in the token, then destroyed once the
    rotation committed) sign nothing for any holder of their handles."""
    local = node.identities.get("agent", now=HSM_NOW)
    signing, _ = node.identities.purpose_key("agent", KeyPurpose.SIGNING, now=HSM_NOW)
    for handle in (local.primary_key, signing):
        node.vault.sign(handle, b"before")
    node.identities.rotate("agent", now=HSM_NOW + 60, compromised=True)
    for handle in (local.primary_key, local.next_key, signing):
        with pytest.raises(KeyNotFound):
            node.vault.sign(handle, b"after the rotation")


def test_a_second_path_to_the_module_gets_no_session_with_a_wrong_pin(
    softhsm: SoftHsm, vault: Pkcs11Vault, tmp_path: Path
) -> None:
    """PKCS#11 login state belongs to the process: an opener of the token through another path
    to the same module (a symbolic link, `..` in it: not the shared session's key) with a
    wrong PIN would have its C_Login answered USER_ALREADY_LOGGED_IN and use the logged-in
    state. Every path is resolved to the module's own (review 57i: a second load of it was
    refused, "cannot load", and so was a second node naming it by its other path with the
    right PIN): the one shared session refuses the wrong PIN by its digest, no session, no
    signature."""
    handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    link = tmp_path / "libtoken.so"
    link.symlink_to(softhsm.module)
    module = Path(softhsm.module)
    for path in (link, module.parent / ".." / module.parent.name / module.name, module):
        with pytest.raises(ConfigError, match="another PIN"):  # refused by digest
            Pkcs11Vault(str(path), softhsm.token_label, "0000").sign(handle, b"x")


def test_a_pin_session_cannot_copy_a_key_into_one_that_does_more(vault: Pkcs11Vault) -> None:
    """C_CopyObject (troth's objects are CKA_COPYABLE) with a template that gives the copy what
    the key's own template withholds: derive (a Diffie-Hellman oracle, review 48d), wrap or
    unwrap, extraction, a readable value, a public object (usable without the PIN), another
    CKA_ID. The token refuses each (the objects are not modifiable)."""
    from pkcs11 import Attribute, ObjectClass
    from pkcs11 import exceptions as p11

    handle = vault.generate(KeyType.P256, KeyPurpose.SIGNING)
    seal = vault.generate_seal_key()
    private = vault._find(handle, ObjectClass.PRIVATE_KEY)
    secret = vault._seal_object(seal)
    widened = [
        (private, {Attribute.DERIVE: True}),
        (private, {Attribute.EXTRACTABLE: True}),
        (private, {Attribute.SENSITIVE: False}),
        (private, {Attribute.MODIFIABLE: True}),
        (private, {Attribute.PRIVATE: False}),
        (private, {Attribute.ID: b"\x01" * 16}),
        (secret, {Attribute.WRAP: True}),
        (secret, {Attribute.UNWRAP: True}),
        (secret, {Attribute.EXTRACTABLE: True}),
        (secret, {Attribute.PRIVATE: False}),
    ]
    for obj, template in widened:
        with vault._lock, pytest.raises(p11.PKCS11Error):
            obj.copy(template)
    with vault._lock, pytest.raises(p11.AttributeSensitive):
        private[Attribute.VALUE]


def test_a_node_made_under_an_open_umask_keeps_its_files_private(troth_home: Path) -> None:
    """Under umask 000 (a service manager's default, a shared shell): every directory troth
    makes is 0700 and every file 0600 (node.db and its write-ahead files, vault.key, node.json,
    the locks), after a rekey too (the new vault.key)."""
    old = os.umask(0)
    try:
        path = make_node(troth_home)
        rekey_vault("n", home=troth_home)
        with open_node("n") as node:
            node.identities.rotate("agent", now=int(time.time()))
            modes = {p.name: stat.S_IMODE(p.lstat().st_mode) for p in path.iterdir()}
    finally:
        os.umask(old)
    assert set(modes) >= {"node.db", "node.db-wal", "vault.key", "node.json"}
    for directory in (troth_home, troth_home / "nodes", path):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert {name: mode for name, mode in modes.items() if mode & 0o077} == {}


def _signs(name: str, now: int) -> bool:
    with open_node(name) as node:
        try:
            node.identities.signer("agent", now=now).sign(b"m")
        except TrothError:
            return False
        return True


def test_a_row_rolled_back_to_its_version_before_a_rekey_does_not_unseal(
    troth_home: Path,
) -> None:
    """A writer of node.db (or a restore from a copy) puts back one key's sealed row as it was
    before a rekey (sealed under the KEK a thief took): it does not unseal under the node's
    KEK, one failure naming that key only; the other identity still signs."""
    path = make_node(troth_home)
    now = int(time.time())
    with open_node("n") as node:
        node.identities.signer("agent", now=now)
        node.identities.signer("other", now=now)
        handle = node.identities.get("agent", now=now).primary_key
    before = {number: sealed for number, _, _, sealed in rows(path)}
    rekey_vault("n", home=troth_home)
    number = int(handle.key_id, 16)
    db = SqliteDatabase(path / "node.db")
    db.execute("UPDATE vault_keys SET sealed = ? WHERE key_id = ?", (before[number], number))
    db.close()
    with open_node("n") as node:
        with pytest.raises(VaultError, match=handle.key_id):
            node.vault.sign(handle, b"m")
        node.identities.signer("other", now=now + 10).sign(b"m")


def test_a_node_directory_moved_without_its_key_or_with_anothers_opens_nothing(
    troth_home: Path,
) -> None:
    """The vault file moved: node.db copied into another node's directory (its own vault.key),
    or beside no vault.key at all, opens none of the keys: the key check refuses the other
    KEK, and a missing key file beside sealed keys is reported, not replaced."""
    path = make_node(troth_home)
    moved = copy_node(path, troth_home / "nodes" / "elsewhere")
    (moved / "vault.key").unlink()
    with pytest.raises(ConfigError, match="missing"):
        open_node("elsewhere")
    other = troth_home / "nodes" / "o"
    run("node", "create", "o")
    (other / "node.db").unlink()
    for suffix in ("-wal", "-shm"):
        (other / f"node.db{suffix}").unlink(missing_ok=True)
    (other / "node.db").write_bytes((path / "node.db").read_bytes())
    with pytest.raises(ConfigError, match="does not open"):
        open_node("o")
    assert _signs("n", int(time.time()))
