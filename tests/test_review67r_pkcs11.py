"""Review 67r, the PKCS#11 vault: review 67j's fork handling, and the node's recorded serial.

pkcs11 1 (medium): a process whose logging handler forks (one that hands records to a child
process it starts, `multiprocessing` with the fork start method, or `os.fork`) hung for ever
at the first warning the vault logs (a seal key made before review 53f or a key made before
64f, at its first use in the process). Review 67j's before-fork handler takes every session's
lock, and the vault logged those warnings while it held its session's lock: the forking
thread waited for a lock it held itself (a `threading.Lock`), so the signature never
returned, and every later operation on the token waited too. Review 67j's "troth never forks
while holding one" held for troth's own code only: a logging handler is the application's.
Fixed: the vault logs after it releases the lock, so no code of the application runs while a
session's lock is held.

pkcs11 2 (low): a fork did not wait for a first open's C_OpenSession/C_Login nor a last
close's C_CloseSession in flight on another thread, which review 67j's before-fork handler
did not cover (they run under the session table's lock, with the session not yet or no more
in the table), so the process forked while the module was inside them: the undefined case
PKCS#11 v2.20 section 6.6.1 warns of (the child then calls C_Finalize and C_Initialize on a
module whose state, its mutexes included, was copied mid-call). Fixed: the handler takes the
table's lock first (no operation takes it while holding a session's), then the sessions'.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Final

import pytest

import troth
import troth.vault.pkcs11 as pkcs11_module
from tests.conftest import SoftHsm
from tests.support.hsm import vault_fixture
from tests.test_review64k_pkcs11 import _pair
from troth.vault.pkcs11 import Pkcs11Vault
from troth.vault.pkcs11_session import module_spelling

__all__ = ["vault_fixture"]

_SOURCE: Final = str(Path(troth.__file__).parents[1])  # the troth a subprocess imports

_FORKING_HANDLER: Final = """
import faulthandler
import logging
import os
import sys

faulthandler.dump_traceback_later(8, exit=True)  # hung: exit 1, the traceback on stderr
from troth.crypto import KeyType
from troth.vault import KeyHandle
from troth.vault.pkcs11 import Pkcs11Vault


class Forking(logging.Handler):
    def emit(self, record):  # as a handler that gives records to a child process it forks
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        print("logged:", record.getMessage())


logging.getLogger("troth.vault.pkcs11").addHandler(Forking())
module, label, pin, key_id = sys.argv[1:]
vault = Pkcs11Vault(module, label, pin)
vault.sign(KeyHandle(vault.name, KeyType.ED25519, key_id), b"data")
vault.sign(KeyHandle(vault.name, KeyType.ED25519, key_id), b"again")
vault.close()
print("signed")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_pkcs11_1_a_logging_handler_that_forks_does_not_hang_the_vault(
    vault: Pkcs11Vault, softhsm: SoftHsm
) -> None:
    """pkcs11 1: a key made before review 64f (copyable) logs its warning at its first
    signature in a process; with a handler that forks, the signature returns, logged."""
    key_id = os.urandom(16).hex()
    _pair(vault, key_id, f"troth:primary:{key_id}")
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                _FORKING_HANDLER,
                module_spelling(softhsm.module),
                softhsm.token_label,
                softhsm.pin,
                key_id,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": _SOURCE},
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert f"logged: key pkcs11:ed25519:{key_id} is copyable" in done.stdout
        assert done.stdout.count("is copyable") == 1  # once a process, as before
        assert done.stdout.rstrip().endswith("signed")
    finally:
        _destroy(vault, key_id)


def _destroy(vault: Pkcs11Vault, key_id: str) -> None:
    """Destroy the pair `_pair` made (the vault's `delete` destroys only keys it made)."""
    from pkcs11 import Attribute

    with vault._lock:
        for found in list(vault._session.get_objects({Attribute.ID: bytes.fromhex(key_id)})):
            found.destroy()


def _forked_after(inside: threading.Event, finished: list[str]) -> list[str]:
    """Fork once `inside` is set; what the thread had finished when the fork returned."""
    inside.wait(10)
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    seen = list(finished)
    os.waitpid(pid, 0)
    return seen


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_pkcs11_2_a_fork_waits_for_a_login_in_flight(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pkcs11 2: a thread is inside the first open's C_OpenSession/C_Login when another
    forks: the fork returns after the login did, not while the module is inside it."""
    inside, finished = threading.Event(), []
    opened = pkcs11_module._open_session

    def slow_login(*args: Any, **kwargs: Any) -> Any:  # a token taking its time to answer
        inside.set()
        threading.Event().wait(0.3)
        session = opened(*args, **kwargs)
        finished.append("login")
        return session

    monkeypatch.setattr(pkcs11_module, "_open_session", slow_login)
    vaults: list[Pkcs11Vault] = []
    thread = threading.Thread(
        target=lambda: vaults.append(Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin))
    )
    thread.start()
    seen = _forked_after(inside, finished)
    thread.join()
    vaults[0].close()
    assert seen == ["login"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_pkcs11_2_a_fork_waits_for_a_close_in_flight(softhsm: SoftHsm) -> None:
    """pkcs11 2: a thread is inside the last close's C_CloseSession when another forks: the
    fork returns after the close did."""
    vault = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)
    inside, finished = threading.Event(), []
    shared = vault._shared

    class SlowClose:  # the session, its close taking its time in the token
        def __init__(self, session: Any) -> None:
            self.session = session

        def close(self) -> None:
            inside.set()
            threading.Event().wait(0.3)
            self.session.close()
            finished.append("close")

    shared.session = SlowClose(shared.session)
    thread = threading.Thread(target=vault.close)
    thread.start()
    seen = _forked_after(inside, finished)
    thread.join()
    assert seen == ["close"]
