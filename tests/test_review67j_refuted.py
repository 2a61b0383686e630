"""Review 67j: attacks on review 67b's PKCS#11 fork handling that did not work; each test fails
if the defence it names breaks.

- A grandchild: the child opened a vault of its own and forked again. The child's vault is
  refused in the grandchild as the parent's is (`SharedSession.pid`), and the grandchild's
  own initialises the module again (`_INITIALIZED_IN` holds the child's pid there), so C_Finalize
  runs only in the process that opens after a fork, never in the one still using the module.
- multiprocessing's "fork" start method: the same refusal and own vault as os.fork, and the
  parent signs on after the child's C_Finalize + C_Initialize (its module is its own).
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.connection import Connection

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import vault_fixture
from troth.crypto import KeyType, PublicKey, verify_signature
from troth.errors import VaultError
from troth.vault import KeyHandle, KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault

__all__ = ["vault_fixture"]


def _in_a_fork(
    vault: Pkcs11Vault, softhsm: SoftHsm, handle: KeyHandle, public: PublicKey
) -> list[str]:
    """What a forked process gets: the vault of the process before (refused) and one of its
    own (signs)."""
    outcomes = []
    try:
        vault.sign(handle, b"inherited")
        outcomes.append("inherited signed")
    except VaultError as exc:
        outcomes.append("refused" if "before a fork" in str(exc) else str(exc))
    own = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)
    verify_signature(public, own.sign(handle, b"own"), b"own")
    own.close()
    outcomes.append("own signed")
    return outcomes


def _forked(work: object) -> str:
    """Run `work` (a callable returning text) in a child of os.fork; what it returned."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        import signal

        signal.alarm(10)  # a child hung is killed (an alarm is not inherited by its child)
        try:
            os.write(write, str(work()).encode())  # type: ignore[operator]
        except BaseException as exc:  # whatever it is, the parent reports it
            os.write(write, repr(exc).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        reported = pipe.read()
    os.waitpid(pid, 0)
    return reported


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_grandchild_refuses_its_parents_vault_and_signs_on_its_own(
    vault: Pkcs11Vault, softhsm: SoftHsm
) -> None:
    """A child opens its vault and forks: in the grandchild the child's vault is refused, one
    of its own signs, and the child and the parent sign on."""
    handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    public = vault.public_key(handle)

    def child() -> str:
        mine = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)
        below = _forked(lambda: _in_a_fork(mine, softhsm, handle, public))
        verify_signature(public, mine.sign(handle, b"child"), b"child")
        mine.close()
        return below

    assert _forked(child) == repr(["refused", "own signed"])
    verify_signature(public, vault.sign(handle, b"parent"), b"parent")


def _fork_started(
    vault: Pkcs11Vault, softhsm: SoftHsm, handle: KeyHandle, public: PublicKey, out: Connection
) -> None:
    """A multiprocessing target: what `_in_a_fork` reports, sent to the parent."""
    try:
        out.send(repr(_in_a_fork(vault, softhsm, handle, public)))
    except BaseException as exc:  # whatever it is, the parent reports it
        out.send(repr(exc))


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="no fork start method"
)
def test_a_multiprocessing_fork_child_refuses_the_parents_vault_and_signs_on_its_own(
    vault: Pkcs11Vault, softhsm: SoftHsm
) -> None:
    """multiprocessing's fork start method: as os.fork (the child's C_Finalize leaves the
    parent's module and session working)."""
    handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    public = vault.public_key(handle)
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_fork_started, args=(vault, softhsm, handle, public, send))
    process.start()
    reported = receive.recv() if receive.poll(30) else "nothing"
    process.join(30)
    assert reported == repr(["refused", "own signed"])
    verify_signature(public, vault.sign(handle, b"parent"), b"parent")
