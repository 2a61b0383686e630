"""Review 67b, the PKCS#11 vault: public objects on the shared test token, and a forked child.

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
"""

from __future__ import annotations

import os

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import vault_fixture
from troth.crypto import KeyType, verify_signature
from troth.errors import VaultError
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault

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
