"""Review 57k, pkcs11 1: review 57b's `_revive` refuses a closed vault, but it looks at
`_closed` before it takes `_SESSIONS_LOCK`, which `close` holds while it closes the last
reference's session. A thread signing through a vault whose shared session was found dead (a
token reset) and another closing the vault (the node's close, as a worker still signs): the
signer passed the check, waited for the lock while `close` ran, then logged in again on a
session registered nowhere and never closed (its next check refused the signature). The
process stayed logged in: every later vault on the token failed to open
(`UserAlreadyLoggedIn`) until the process ended, the leak review 57b, pkcs11 2 closed for a call
after the close. `_revive` now looks at `_closed` again under the lock."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import troth.vault.pkcs11 as pkcs11_vault
from tests.conftest import SoftHsm
from tests.support.hsm import NOW, agent_node_fixture, token_vault  # noqa: F401  (fixtures)
from troth.crypto import KeyType, verify_signature
from troth.errors import KeyNotFound, VaultError
from troth.node import Node, open_node
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault


class _HeldLock:
    """`_SESSIONS_LOCK` as one thread meets it: it says it arrived, then waits for `go`."""

    def __init__(self, real: Any, held: threading.Thread) -> None:
        self.real = real
        self.held = held
        self.arrived = threading.Event()
        self.go = threading.Event()

    def __enter__(self) -> None:
        if threading.current_thread() is self.held and not self.arrived.is_set():
            self.arrived.set()
            self.go.wait(timeout=60)
        self.real.acquire()

    def __exit__(self, *exc: object) -> None:
        self.real.release()


@pytest.fixture(name="dead")
def dead_fixture(softhsm: SoftHsm) -> Iterator[tuple[Pkcs11Vault, Any]]:
    """A vault on the token with a signing key, its shared session found dead (a reset);
    any session left logged in is closed after, and the key deleted."""
    vault = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)
    handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    shared = vault._shared
    shared.session.close()  # the token reset under the process
    with pytest.raises(VaultError):
        vault.sign(handle, b"noted dead")
    assert shared.dead
    try:
        yield vault, handle
    finally:
        vault.close()
        with contextlib.suppress(Exception):  # a session logged in and registered nowhere
            shared.session.close()
        with token_vault(softhsm) as cleaner:
            cleaner.delete_retired(handle, cleaner.retire(handle, KeyPurpose.SIGNING))


def test_a_vault_closed_while_a_thread_revives_its_session_signs_nothing(
    softhsm: SoftHsm, dead: tuple[Pkcs11Vault, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    vault, handle = dead
    outcome: list[object] = []

    def sign() -> None:
        try:
            outcome.append(vault.sign(handle, b"after close"))
        except VaultError as exc:
            outcome.append(exc)

    signer = threading.Thread(target=sign)
    gate = _HeldLock(pkcs11_vault._SESSIONS_LOCK, signer)
    monkeypatch.setattr(pkcs11_vault, "_SESSIONS_LOCK", gate)
    signer.start()
    assert gate.arrived.wait(timeout=60)  # past the `_closed` check, before the lock
    vault.close()  # the node closes while its worker signs
    gate.go.set()
    signer.join(timeout=60)
    monkeypatch.undo()
    assert len(outcome) == 1
    assert isinstance(outcome[0], VaultError), "a closed vault signed"
    with token_vault(softhsm) as reopened:  # the process is not left logged in
        verify_signature(reopened.public_key(handle), reopened.sign(handle, b"x"), b"x")


def _as_the_spec_words_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """C_SignInit with a key handle the token no longer knows fails with CKR_KEY_HANDLE_INVALID
    in PKCS#11 (v2.40 and v3.0 list no other for it), which python-pkcs11 raises as
    KeyHandleInvalid; SoftHSM2 says CKR_OBJECT_HANDLE_INVALID. The token's answer, as a token
    that follows the standard gives it."""
    from pkcs11.exceptions import KeyHandleInvalid

    sign_with = Pkcs11Vault._sign_with

    def spec(self: Pkcs11Vault, private: Any, key_type: KeyType, data: bytes) -> bytes:
        try:
            return sign_with(self, private, key_type, data)
        except VaultError as exc:
            if type(exc.__cause__).__name__ != "ObjectHandleInvalid":
                raise
            raise VaultError("PKCS#11 sign failed: KeyHandleInvalid") from KeyHandleInvalid()

    monkeypatch.setattr(Pkcs11Vault, "_sign_with", spec)


def test_a_destroyed_key_is_key_not_found_on_a_token_that_says_key_handle_invalid(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    _as_the_spec_words_it(monkeypatch)
    held = node.identities.signer("agent", now=NOW)
    held.sign(b"before")  # its object cached
    with open_node("hsm") as other:
        other.identities.rotate("agent", now=NOW + 10, compromised=True)
    with pytest.raises(KeyNotFound, match="in the token"):
        held.sign(b"after")
