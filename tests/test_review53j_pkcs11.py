"""Review 53j, pkcs11 1: the shared session's recovery (review 53f, pkcs11 4) marked the NEW
session dead on an old one's error.

Every vault over one token shares one logged-in session (`_SharedSession`); an operation that
finds it dead marks it so, and the next one opens it again (`_revive`, run as an operation
starts). An operation already past `_revive` when another vault reopened the session still
uses the old session object (closed) and fails with CKR_SESSION_HANDLE_INVALID: that error
marked the shared session dead although the session it names is a fresh, healthy one, so the
next operation of any vault closed it and logged in again, failing every operation in flight on
it, each of which marked the newer one dead in turn (under concurrent signing, a loop of logins
in which few operations succeed). Was a strict xfail until a dead session's error marked the
shared session dead only when it came from the session the shared one still holds.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from tests.conftest import SoftHsm
from troth.crypto import KeyType
from troth.errors import VaultError
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault

pytestmark = pytest.mark.hsm


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_old_sessions_error_does_not_mark_the_new_one_dead(softhsm: SoftHsm) -> None:
    first = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)
    second = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)
    try:
        handle = first.generate(KeyType.ED25519, KeyPurpose.SIGNING)
        assert second.sign(handle, b"m")
        shared = first._shared
        first._session.close()  # the session ends under the process
        with pytest.raises(VaultError):
            first.sign(handle, b"m")
        assert first.sign(handle, b"m")  # reopened: generation 1
        assert shared.generation == 1
        assert not shared.dead
        # `second` was past its `_revive` when `first` reopened: its operation runs on the old
        # session (the race, made deterministic)
        revive = second._revive
        second._revive = lambda: None  # type: ignore[method-assign]
        with pytest.raises(VaultError):
            second.sign(handle, b"m")
        second._revive = revive  # type: ignore[method-assign]
        assert not shared.dead  # the session it names is healthy
        assert first.sign(handle, b"n")
        assert second.sign(handle, b"n")
        assert shared.generation == 1  # nobody logged in again
    finally:
        second.close()
        first.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_pin_the_token_refuses_at_a_new_login_is_not_tried_again(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pkcs11 2: the recovery logs in again with the PIN the vault was opened with, at the
    next operation after the session died, and at every one after it while that fails. A PIN
    changed on the token since (rotated by its officer, the node to be restarted with the new
    one) was tried at every operation (every handshake or request that signs, which a remote
    peer causes at will): each a failed C_Login, which a token counts towards locking its user
    PIN (CKR_PIN_LOCKED: the token unusable until its security officer unlocks it). Before
    review 53f the dead session stayed dead and no login was tried. Now a PIN refused at a new
    login is not tried again in this process (each operation a VaultError saying so), and a
    failure to reopen is the vault's VaultError, not a ConfigError from an operation."""
    import troth.vault.pkcs11 as module

    logins: list[str] = []
    real = module._open_session

    def counted(*args: Any) -> Any:
        logins.append("login")
        return real(*args)

    vault = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)
    try:
        handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
        vault._session.set_pin(softhsm.pin, softhsm.pin + "-rotated")
        vault._session.close()  # then the session ends under the process
        monkeypatch.setattr(module, "_open_session", counted)
        for _ in range(10):
            with pytest.raises(VaultError) as failed:
                vault.sign(handle, b"m")
        assert logins == ["login"]
        assert "PinIncorrect" in str(failed.value)
        assert "not tried again" in str(failed.value)
    finally:
        vault.close()
        with contextlib.suppress(Exception):  # the token's PIN as the fixture made it
            session = real(
                pytest.importorskip("pkcs11"),
                softhsm.module,
                softhsm.token_label,
                softhsm.pin + "-rotated",
            )
            session.set_pin(softhsm.pin + "-rotated", softhsm.pin)
            session.close()
