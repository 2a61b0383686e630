"""The PKCS#11 vault's one logged-in session per token per process (`SharedSession`) and its
error mapping (`MapErrors`): split from troth.vault.pkcs11 (review 64f), which opens, revives
and closes it."""

from __future__ import annotations

import threading
from typing import Any, Final

from troth.errors import VaultError

__all__ = ["DEAD_SESSION", "MapErrors", "SharedSession", "note_dead", "twinned"]

DEAD_SESSION: Final = (
    "SessionHandleInvalid",
    "SessionClosed",
    "UserNotLoggedIn",
    "DeviceRemoved",
    "TokenNotPresent",
)
"""python-pkcs11's errors for a session that ended under the process (a token reset or removed,
a network HSM failing over): the shared session is opened again at the next operation."""


class SharedSession:
    """One logged-in session per (module, token) per process: PKCS#11 login state belongs to
    the application, so a second C_Login fails with USER_ALREADY_LOGGED_IN. Sessions are not
    thread-safe, so they come with one lock. A session found dead (`DEAD_SESSION`) is opened
    again, logged in with the PIN it was opened with, by the next operation of any vault over
    it, which drops the key objects it found through the old one (`generation`): before review
    53f (pkcs11 4) it stayed dead, and every vault of the process with it, so a running node
    signed nothing until it was restarted. A PIN the token refuses at that login is not tried
    again (`refused`; review 53j, pkcs11 2)."""

    def __init__(self, session: Any, pin: str, pin_digest: bytes) -> None:
        self.session = session
        self.pin = pin
        self.pin_digest = pin_digest
        self.refs = 0
        self.lock = threading.Lock()
        self.dead = False
        self.generation = 0
        self.refused: str | None = None  # why the PIN is not tried again (`_revive`)


def note_dead(shared: SharedSession, exc: BaseException, session: Any) -> None:
    """Mark `shared` dead when `exc` says `session`, the one the operation used, ended
    (`DEAD_SESSION`) and `shared` still holds it: an operation on a session another vault
    already replaced marked the new one dead, which the next operation closed under every
    operation in flight on it (review 53j, pkcs11 1)."""
    if type(exc).__name__ in DEAD_SESSION and shared.session is session:
        shared.dead = True


class MapErrors:
    """Turn python-pkcs11 errors into VaultError (one place, `raise ... from`), noting a dead
    session (`note_dead`)."""

    def __init__(
        self, what: str, base: type[Exception], shared: SharedSession, session: Any
    ) -> None:
        self._what = what
        self._base = base
        self._shared = shared
        self._session = session

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if exc is not None and isinstance(exc, self._base):
            note_dead(self._shared, exc, self._session)
            raise VaultError(f"PKCS#11 {self._what} failed: {type(exc).__name__}") from exc


def twinned(key: object, count: int) -> VaultError:
    """The error for `count` (> 1) private objects under `key`'s CKA_ID, none of which is
    used: a session with the PIN made the other (a copy of a key made before review 64f, or
    a key generated under its id, which CKA_COPYABLE does not stop). Review 64k, pkcs11 1:
    "no key ... in the token" sent the operator looking for a key the token held."""
    return VaultError(
        f"the token holds {count} private objects under the id of {key}: a session with its "
        "PIN made the other (a copy, or a key generated under that id), so neither is used; "
        "destroy the one that is not the key with the token's tools, or retire the key "
        '(`troth identity rotate --compromised`; docs/vault.md, "PKCS#11 vault")'
    )
