"""Review 68d, the PKCS#11 vault: the recorded serial among tokens of one label; a fork from the
thread that holds a session's lock.

pkcs11 1 (low; a denial of service): a second token given the node's label (another slot of
the module, a network HSM partition someone else labelled alike, a SoftHSM2 token made in the
token directory) stopped the node from opening: python-pkcs11 answered the search by label
with MultipleTokensReturned, reported as "cannot list tokens", although node.json records the
serial of the node's token since review 67j and the process's first login knows it (`_revive`
too: a running node's session, found dead, was never opened again). Fixed: the vault lists
the tokens of the label and logs in to the one of the recorded (or first met) serial; with no
serial to go by it refuses to choose, saying that several tokens bear the label and how to
tell them apart; so it does among several of the label and the serial (as python-pkcs11 did:
SoftHSM2 holds no two tokens of one serial, so that case is not tested here).

pkcs11 2 (low): a fork from the thread that held a session's lock (a signal handler, run
between two bytecodes of python-pkcs11's `sign`: a pre-fork server's SIGHUP or SIGCHLD that
starts a worker) hung the process for ever: review 67j's before-fork handler waited for the
lock its own thread held (a `threading.Lock`), holding the session table's lock, so every
vault of the process waited with it. Fixed: the table's and the sessions' locks are
re-entrant (`threading.RLock`): the fork goes on, every other thread's operation still waited
for.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

import troth
from tests.conftest import SoftHsm
from troth.vault.pkcs11_session import module_spelling

_SOURCE: Final = str(Path(troth.__file__).parents[1])  # the troth a subprocess imports


def token_directory(tmp_path: Path, softhsm: SoftHsm, *labels: str) -> dict[str, str]:
    """A SoftHSM2 token directory of its own under `tmp_path`, one token for each of `labels`
    (the PIN `softhsm.pin`): the environment of a subprocess that uses it."""
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf), "PYTHONPATH": _SOURCE}
    for label in labels:
        init = ["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", "13579"]
        subprocess.run([*init, "--pin", softhsm.pin], check=True, capture_output=True, env=env)
    return env


def run(script: str, env: dict[str, str], *args: str) -> list[str]:
    """The lines `script` printed, run in a subprocess with `env`; it must exit 0."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


_TWINS: Final = """
import sys
import pkcs11
from troth.crypto import KeyType, verify_signature
from troth.errors import ConfigError
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault

module, pin = sys.argv[1:]
serials = sorted(bytes(t.serial) for t in pkcs11.lib(module).get_tokens(token_label="twin"))
for serial in (None, bytes(8)):  # no serial to go by; a recorded one of neither
    try:
        Pkcs11Vault(module, "twin", pin, serial=serial).close()
        print("opened")
    except ConfigError as exc:
        print(exc)
vault = Pkcs11Vault(module, "twin", pin, serial=serials[1])
handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
verify_signature(vault.public_key(handle), vault.sign(handle, b"m"), b"m")
print(vault.token_serial == serials[1])
vault.delete(handle)
vault.close()
"""


def test_pkcs11_1_the_recorded_serial_picks_the_nodes_token_among_two_of_its_label(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    """pkcs11 1: two tokens labelled alike; the one of the recorded serial is logged in to and
    signs. With no serial the vault chooses neither (saying so), nor one of another serial."""
    env = token_directory(tmp_path, softhsm, "twin", "twin")
    unpinned, other, pinned = run(_TWINS, env, module_spelling(softhsm.module), softhsm.pin)
    assert "2 PKCS#11 tokens are labelled 'twin'" in unpinned
    assert "token_serial" in unpinned
    assert "than the node's" in other
    assert pinned == "True"


_FORK_IN_HANDLER: Final = """
import faulthandler, os, signal, sys
from pkcs11 import types as p11_types
from troth.crypto import KeyType, verify_signature
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault

faulthandler.dump_traceback_later(20, exit=True)  # hung: the test reads the traceback
module, pin = sys.argv[1:]
vault = Pkcs11Vault(module, "one", pin)
handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
children = []

def respawn(signum, frame):  # a pre-fork server's handler: starts a worker
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    children.append(pid)

def tracer(frame, event, arg):  # the signal arrives while python-pkcs11 signs
    if event == "call" and frame.f_code.co_name == "sign" and not children:
        if frame.f_globals.get("__name__") == p11_types.__name__:
            signal.raise_signal(signal.SIGUSR1)

signal.signal(signal.SIGUSR1, respawn)
sys.settrace(tracer)
signature = vault.sign(handle, b"m")
sys.settrace(None)
verify_signature(vault.public_key(handle), signature, b"m")
print([os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children])
other = Pkcs11Vault(module, "one", pin)  # the table's lock released too
verify_signature(other.public_key(handle), other.sign(handle, b"n"), b"n")
other.close()
vault.delete(handle)
vault.close()
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_pkcs11_2_a_fork_from_a_signal_handler_mid_signature_does_not_hang(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    """pkcs11 2: a signal handler forks while its thread signs (the session's lock held): the
    fork goes on, the child exits, the signature verifies and the vault opens again."""
    env = token_directory(tmp_path, softhsm, "one")
    assert run(_FORK_IN_HANDLER, env, module_spelling(softhsm.module), softhsm.pin) == ["[7]"]
