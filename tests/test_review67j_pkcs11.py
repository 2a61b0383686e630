"""Review 67j, the PKCS#11 vault: a node's token by serial number; a fork while a thread signs.

pkcs11 1 (medium; the limit review 67b left): a process's first login trusted the token label
alone. node.json named the token by its label only, so a token initialised under the label
(another slot, a replaced smart card, a network HSM partition someone else labelled alike)
was given the PIN by the next process that opened the node, which made its next keys and
seal keys there; reviews 66a2 and 67b only kept the serial within one process. Fixed: the
token's serial number is recorded in node.json (`token_serial`) at the node's first open
(`troth node init`, or the first open of a node made before), and every open logs in to a
token of that serial only (`ConfigError` naming both serials and the remedies). A node.json
without it is read as before and gets it at its next open.

pkcs11 2 (medium): a child forked while another thread of the parent was inside a vault
operation hung for ever at its own vault's first signature. python-pkcs11 reads a key
object's attributes through `functools.cached_property`, whose lock (Python 3.11, one per
attribute for every object of the class) the parent's thread held at the fork: the child's
copy stayed held by a thread it does not have. Seen with one thread signing and the main
thread forking (its first fork hung, in `cached_property.__get__`). Fixed: before a fork the
process takes the lock of each of its sessions (every troth call into python-pkcs11 holds
it), so no operation is in flight across the fork (os.register_at_fork).

pkcs11 3 (low): review 67b's refusal of a token found under the label with another serial
than the one the process opened first said only "put back the one this process opened": an
operator who initialised the token again on purpose was told no way to take it. It now says
to restart the process (and, for a node's recorded serial, to remove `token_serial`).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Final

import pytest

import troth
from tests.conftest import SoftHsm
from tests.support.hsm import vault_fixture
from troth.crypto import KeyType, verify_signature
from troth.errors import ConfigError
from troth.node.node import open_node
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault
from troth.vault.pkcs11_session import module_spelling

__all__ = ["vault_fixture"]

_SOURCE: Final = str(Path(troth.__file__).parents[1])  # the troth a subprocess imports


def _node_json(troth_home: Path, name: str) -> Path:
    return troth_home / "nodes" / name / "node.json"


def _token_serial(vault: Pkcs11Vault) -> str:
    serial = vault.token_serial
    assert serial
    return serial.hex()


def test_pkcs11_1_a_node_records_its_tokens_serial_and_opens_on_no_other(
    vault: Pkcs11Vault, softhsm: SoftHsm, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pkcs11 1: `troth node init` records the token's serial number; a node.json recording
    another (the node was made on another token, this one now has its label) is refused,
    saying both serials and what to do, also while the process is logged in to this one."""
    softhsm.init_node("hsm", monkeypatch)
    path = _node_json(troth_home, "hsm")
    assert json.loads(path.read_text())["token_serial"] == _token_serial(vault)
    data = json.loads(path.read_text())
    data["token_serial"] = "00" * 16
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"another token .* than the node.s") as caught:
        open_node("hsm")
    assert "remove token_serial from node.json" in str(caught.value)
    assert json.loads(path.read_text())["token_serial"] == "00" * 16  # not overwritten


def test_pkcs11_1_a_node_json_without_a_serial_gets_it_at_its_next_open(
    vault: Pkcs11Vault, softhsm: SoftHsm, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pkcs11 1: a node made before review 67j (no `token_serial`) opens, and records it."""
    softhsm.init_node("hsm", monkeypatch)
    path = _node_json(troth_home, "hsm")
    data = json.loads(path.read_text())
    del data["token_serial"]
    path.write_text(json.dumps(data))
    with open_node("hsm") as node:
        assert node.config.token_serial is None  # as read: recorded in node.json
    assert json.loads(path.read_text())["token_serial"] == _token_serial(vault)


_FIRST_LOGIN: Final = """
import sys
from pkcs11 import lib
from troth.errors import ConfigError
from troth.vault.pkcs11 import Pkcs11Vault

module, label, pin = sys.argv[1:]
try:
    Pkcs11Vault(module, label, pin, serial=bytes(16)).close()
    outcome = "opened"
except ConfigError as exc:
    outcome = str(exc)
with lib(module).get_token(token_label=label).open(user_pin=pin):  # not logged in before
    print(outcome)
"""


def test_pkcs11_1_a_processs_first_login_is_on_the_recorded_token_only(
    softhsm: SoftHsm,
) -> None:
    """pkcs11 1: in a fresh process (no session, no serial met), a vault given its node's
    serial does not log in to the token of the label that has another."""
    argv = [module_spelling(softhsm.module), softhsm.token_label, softhsm.pin]
    env = {**os.environ, "PYTHONPATH": _SOURCE}
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_LOGIN, *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "than the node's" in done.stdout


def _cached_property_locks() -> list[threading.RLock]:
    """The locks python-pkcs11's key objects' attributes are read under (Python 3.11's
    `cached_property`: one per attribute, for every object of its class)."""
    import pkcs11.types

    found = []
    for _, kind in inspect.getmembers(pkcs11.types, inspect.isclass):
        for value in vars(kind).values():
            if isinstance(value, functools.cached_property) and hasattr(value, "lock"):
                found.append(value.lock)
    return found


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
@pytest.mark.skipif(not _cached_property_locks(), reason="cached_property has no lock here")
def test_pkcs11_2_a_child_forked_while_a_thread_signs_signs_on_its_own_vault(
    vault: Pkcs11Vault, softhsm: SoftHsm
) -> None:
    """pkcs11 2: a thread of the parent is inside a signature (its session's lock held, a key
    object's attribute being read) when the main thread forks: the child's own vault signs."""
    handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    public = vault.public_key(handle)
    inside = threading.Event()

    def signing() -> None:  # what `_sign_with` holds while python-pkcs11 reads key_type
        with vault._lock:
            locks = _cached_property_locks()
            for lock in locks:
                lock.acquire()
            inside.set()
            threading.Event().wait(0.5)
            for lock in locks:
                lock.release()

    thread = threading.Thread(target=signing)
    thread.start()
    inside.wait(10)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        import faulthandler

        faulthandler.dump_traceback_later(5, exit=True)  # a child hung: the parent reads ""
        try:
            own = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)
            verify_signature(public, own.sign(handle, b"own"), b"own")
            own.close()
            os.write(write, b"own signed")
        except BaseException as exc:  # whatever it is, the parent reports it
            os.write(write, repr(exc).encode())
        os._exit(0)
    os.close(write)
    thread.join()
    with os.fdopen(read) as pipe:
        reported = pipe.read()
    os.waitpid(pid, 0)
    assert reported == "own signed"
    verify_signature(public, vault.sign(handle, b"parent"), b"parent")


_REINITIALISED: Final = """
import sys
import troth.vault.pkcs11 as module
from troth.errors import ConfigError

path, pin = sys.argv[1], sys.argv[2]
module.Pkcs11Vault(path, "real", pin).close()
opened = module._open_session  # the token initialised again: a new serial under the label
module._open_session = lambda p11, m, label, *rest: opened(p11, m, "again", *rest)
try:
    module.Pkcs11Vault(path, "real", pin).close()
    print("opened")
except ConfigError as exc:
    print(exc)
"""


def test_pkcs11_3_a_token_initialised_again_is_refused_with_the_way_to_take_it(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    """pkcs11 3 (low): a process that opened the token, then (every vault closed) opens it
    again after the operator initialised it anew (a new serial under the label) is refused,
    as review 67b made it, and now says how to take the new token (restart the process), not
    only to put back the old one, which an operator who re-initialised it on purpose has not."""
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf), "PYTHONPATH": _SOURCE}
    for label in ("real", "again"):
        init = ["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", "13579"]
        subprocess.run([*init, "--pin", softhsm.pin], check=True, capture_output=True, env=env)
    done = subprocess.run(
        [sys.executable, "-c", _REINITIALISED, module_spelling(softhsm.module), softhsm.pin],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "is now another token" in done.stdout
    assert "restart the process" in done.stdout
