"""Review 68d: attacks on the PKCS#11 vault's serial pinning and fork handling (reviews 67b,
67j, 67r) that did not work; each test fails if the defence it names breaks.

- A fork in a child of a child, while a thread of each child tries the vault of the process
  before it during the child's own open (C_Finalize, C_Initialize): that vault refuses every
  call ("before a fork", never touching the session), and each child's own vault signs
  (`forget_forked`, `_INITIALIZED_IN`, `Pkcs11Vault._revive`'s pid check).
- A key's object cached by one vault, the key destroyed by another vault of the process and
  new keys made after it: the cached handle signs with none of them (`KeyNotFound`, the stale
  object dropped: `_STALE_OBJECT`).
- node.json's `token_serial` of another type (a number, true, a list, an object): refused
  when node.json is read (`ConfigError`, no crash); `null` is read as none recorded, and the
  token's serial is recorded at that open (`_open_pkcs11`).
- Two tokens of one label: a process logged in to one gives no login to the other, neither
  to a vault recording the other's serial nor to one recording none (`recorded_serial`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Final

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import vault_fixture
from tests.test_review68d_pkcs11 import run, token_directory
from troth.crypto import KeyType
from troth.errors import ConfigError, KeyNotFound
from troth.node.node import open_node
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault
from troth.vault.pkcs11_session import module_spelling

__all__ = ["vault_fixture"]

_GRANDCHILD: Final = """
import faulthandler, os, sys, threading
from troth.crypto import KeyType, verify_signature
from troth.errors import VaultError
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault

faulthandler.dump_traceback_later(20, exit=True)
module, pin = sys.argv[1:]
vault = Pkcs11Vault(module, "one", pin)
handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
public = vault.public_key(handle)

def own_vault(before):
    refused = []
    def older():  # the process before's vault, while this one initialises the module
        for _ in range(100):
            try:
                before.sign(handle, b"x")
                refused.append(False)
            except VaultError as exc:
                refused.append("before a fork" in str(exc))
    thread = threading.Thread(target=older)
    thread.start()
    own = Pkcs11Vault(module, "one", pin)
    verify_signature(public, own.sign(handle, b"own"), b"own")
    thread.join()
    if set(refused) != {True}:
        raise RuntimeError(refused)
    return own

def forked(body):
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(body())
        except BaseException as exc:
            print(repr(exc), file=sys.stderr, flush=True)
            os._exit(3)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

def child():
    own = own_vault(vault)
    return 10 + forked(lambda: (own_vault(own).close(), 0)[1])

print(forked(child))
verify_signature(public, vault.sign(handle, b"parent"), b"parent")
vault.delete(handle)
vault.close()
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_grandchild_refuses_its_parents_vault_mid_reinit_and_signs_on_its_own(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    """A fork in a child of a child: each refuses the vault before it, signs on its own."""
    env = token_directory(tmp_path, softhsm, "one")
    assert run(_GRANDCHILD, env, module_spelling(softhsm.module), softhsm.pin) == ["10"]


def test_a_cached_handle_of_a_destroyed_key_signs_with_no_later_key(
    vault: Pkcs11Vault, softhsm: SoftHsm
) -> None:
    """One vault caches a key's object; another of the process destroys the key and makes
    new ones: the cached handle is no key (KeyNotFound), not one of the new keys."""
    other = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)
    try:
        handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
        other.sign(handle, b"cached")
        vault.delete(handle)
        later = [vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY) for _ in range(3)]
        with pytest.raises(KeyNotFound, match="destroyed: its cached object"):
            other.sign(handle, b"again")
        for key in later:
            vault.delete(key)
    finally:
        other.close()


@pytest.mark.parametrize("edited", [123, True, ["00"], {"serial": "00"}])
def test_a_token_serial_of_another_type_is_refused_when_node_json_is_read(
    edited: object, softhsm: SoftHsm, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """node.json's `token_serial` edited to another JSON type: ConfigError, no crash."""
    softhsm.init_node("hsm", monkeypatch)
    path = troth_home / "nodes" / "hsm" / "node.json"
    data = json.loads(path.read_text())
    data["token_serial"] = edited
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="wrong fields or types"):
        open_node("hsm")


def test_a_null_token_serial_is_none_recorded_and_the_tokens_is_recorded(
    vault: Pkcs11Vault, softhsm: SoftHsm, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`"token_serial": null` is read as a node.json made before review 67j: the open records
    the token's serial (the same trust as removing it, the documented way to take a token)."""
    softhsm.init_node("hsm", monkeypatch)
    path = troth_home / "nodes" / "hsm" / "node.json"
    data = json.loads(path.read_text())
    recorded = data["token_serial"]
    data["token_serial"] = None
    path.write_text(json.dumps(data))
    with open_node("hsm"):
        pass
    serial = vault.token_serial
    assert serial is not None
    assert json.loads(path.read_text())["token_serial"] == recorded == serial.hex()


_ONE_OF_TWINS: Final = """
import sys
import pkcs11
from troth.errors import ConfigError
from troth.vault.pkcs11 import Pkcs11Vault

module, pin = sys.argv[1:]
first, second = sorted(bytes(t.serial) for t in pkcs11.lib(module).get_tokens(token_label="twin"))
vault = Pkcs11Vault(module, "twin", pin, serial=first)
try:
    Pkcs11Vault(module, "twin", pin, serial=second).close()
    print("opened")
except ConfigError as exc:
    print(exc)
unpinned = Pkcs11Vault(module, "twin", pin)
print(unpinned.token_serial == first)
unpinned.close()
vault.close()
again = Pkcs11Vault(module, "twin", pin)  # every one closed: the one met first still
print(again.token_serial == first)
again.close()
"""


def test_a_process_on_one_of_two_twins_gives_no_login_to_the_other(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    """Two tokens of one label: the process stays on the one it opened first."""
    env = token_directory(tmp_path, softhsm, "twin", "twin")
    other, unpinned, again = run(_ONE_OF_TWINS, env, module_spelling(softhsm.module), softhsm.pin)
    assert "than the node's" in other
    assert (unpinned, again) == ("True", "True")
