"""Review 67b, the PKCS#11 vault: public objects on the test token, a forked child, a reopen.

pkcs11 1 (test suite, no troth defect): a fresh-clone CI found 2 public (CKA_PRIVATE false)
objects labelled troth's on the session's SoftHSM2 token (review 66a2's refuted test was made
order-independent for it). Listing the token's public objects, from a session without the PIN,
after every HSM test showed troth makes none: every one was planted by a test acting as a
session without the PIN (test_review35b_pkcs11, 48k_pkcs11, 55d_pkcs11, 55k_pkcs11,
57k_refuted), and left on the token for every later test. Fixed in tests/conftest.py: after
each test on the token its public objects are destroyed (`_hsm_public_objects_cleared`).

pkcs11 2 (medium): a process that forks after opening the vault leaves its logged-in session
to the child as well. PKCS#11 v2.20 §6.6.1 ("Applications and processes"): a forked child
must call C_Initialize, and what it does with the parent's sessions is undefined (their
handles, on a network HSM its connection, are the parent's: a child's request interleaved
with the parent's gets the other's answer, a child's close ends the parent's session; SoftHSM2
happens to give the child a copy that works, so the attack is shown as troth's not looking).
troth never looked at the process: in the child the parent's vault signed, generated keys
and closed the shared session, and a vault opened in the child took the parent's session from
the process's table. Fixed: a session is of the process that
opened it; in another (a forked child) the parent's vaults refuse every operation
(`VaultError`, "before a fork") and close without touching it, and a vault opened in the child
initialises the module anew and opens its own session.

pkcs11 3 (low): review 66a2 (pkcs11 2) kept the token's serial number in the shared session,
so a session reopened under the process gets no other token of the label; but once every
vault on the token closed, the shared session went, and with it the serial: a vault opened
again in the same process (a node stopped and started in a long-lived process, an embedding
application) logged in to whatever token then had the label and made its keys there. Fixed:
the serial is kept for the process (`_SERIALS`), and such an open is a `ConfigError`.

pkcs11 4 (low): a thread of the parent held the process's table of sessions (opening or
closing a vault) at a fork: the child's copy of its lock stayed held, by a thread the child
does not have, and the child's first vault waited for ever. Fixed: the child gets a lock of
its own (os.register_at_fork).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

import troth
from tests.conftest import SoftHsm
from tests.support.hsm import vault_fixture
from troth.crypto import KeyType, verify_signature
from troth.errors import VaultError
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault
from troth.vault.pkcs11_session import module_spelling

__all__ = ["vault_fixture"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_pkcs11_2_a_forked_child_does_not_use_its_parents_session(
    vault: Pkcs11Vault, softhsm: SoftHsm
) -> None:
    """pkcs11 2: after a fork, the child's calls on the parent's vault are refused, its close
    leaves the parent's session alone, and a vault it opens itself signs; the parent signs on."""
    handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    public = vault.public_key(handle)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        outcomes = []
        try:
            for call in (lambda: vault.sign(handle, b"child"), lambda: vault.public_key(handle)):
                try:
                    call()
                    outcomes.append("done")
                except VaultError as exc:
                    outcomes.append("refused" if "before a fork" in str(exc) else str(exc))
            vault.close()
            own = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)
            verify_signature(public, own.sign(handle, b"own"), b"own")
            own.close()
            outcomes.append("own signed")
        except BaseException as exc:  # whatever it is, the parent reports it
            outcomes.append(repr(exc))
        os.write(write, repr(outcomes).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        reported = pipe.read()
    os.waitpid(pid, 0)
    assert reported == repr(["refused", "refused", "own signed"])
    verify_signature(public, vault.sign(handle, b"parent"), b"parent")


_REOPENED: Final = """
import sys
from pkcs11 import Attribute, ObjectClass, lib
from pkcs11.exceptions import UserAlreadyLoggedIn
from troth.errors import ConfigError
import troth.vault.pkcs11 as module

path, pin = sys.argv[1], sys.argv[2]
module.Pkcs11Vault(path, "real", pin).close()  # every vault of the token closed
opened = module._open_session  # the label now names another token (as review 66a2's test)
module._open_session = lambda p11, m, label, *rest: opened(p11, m, "impostor", *rest)
try:
    module.Pkcs11Vault(path, "real", pin).generate_seal_key()
    outcome = "made"
except ConfigError as exc:
    outcome = str(exc)
try:
    with lib(path).get_token(token_label="impostor").open(user_pin=pin) as session:
        made = len(list(session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY})))
except UserAlreadyLoggedIn:  # the vault logged in to it
    made = -1
print(repr((outcome, made)))
"""


def test_pkcs11_3_a_vault_opened_again_in_the_process_gets_no_other_token_of_the_label(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    """pkcs11 3: every vault of the token closed, then one opened again in the process while
    the label names another token that takes the PIN: no login there, nothing made there."""
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    env = {
        **os.environ,
        "SOFTHSM2_CONF": str(conf),
        "PYTHONPATH": str(Path(troth.__file__).parents[1]),
    }
    for label in ("real", "impostor"):
        init = ["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", "13579"]
        subprocess.run([*init, "--pin", softhsm.pin], check=True, capture_output=True, env=env)
    done = subprocess.run(
        [sys.executable, "-c", _REOPENED, module_spelling(softhsm.module), softhsm.pin],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    outcome, made = ast.literal_eval(done.stdout.strip())
    assert "is now another token" in outcome
    assert made == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_pkcs11_4_a_child_forked_while_a_thread_opens_a_vault_opens_its_own(
    vault: Pkcs11Vault, softhsm: SoftHsm
) -> None:
    """pkcs11 4: a thread of the parent holds the process's session table (opening or closing
    a vault) when another forks: the child's copy of its lock stays held by a thread the child
    does not have, and the child's first open waited for ever. The child now opens its own."""
    import threading

    import troth.vault.pkcs11 as module

    handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    public = vault.public_key(handle)
    held, release = threading.Event(), threading.Event()

    def opening() -> None:  # a vault opened by another thread, caught at the fork
        with module._SESSIONS_LOCK:
            held.set()
            release.wait(0.2)  # the fork waits for it (review 67r, pkcs11 2)

    thread = threading.Thread(target=opening)
    thread.start()
    held.wait(10)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        import signal

        signal.alarm(5)  # a child waiting for ever is killed: the parent then reads nothing
        try:
            own = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)
            verify_signature(public, own.sign(handle, b"own"), b"own")
            own.close()
            os.write(write, b"own signed")
        except BaseException as exc:  # whatever it is, the parent reports it
            os.write(write, repr(exc).encode())
        os._exit(0)
    os.close(write)
    release.set()
    thread.join()
    with os.fdopen(read) as pipe:
        reported = pipe.read()
    os.waitpid(pid, 0)
    assert reported == "own signed"
