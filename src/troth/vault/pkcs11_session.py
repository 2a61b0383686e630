"""The PKCS#11 vault's one logged-in session per token per process (`SharedSession`), how it is
opened (`open_session`: review 66a2 moved it here) and its error mapping (`MapErrors`): split
from troth.vault.pkcs11 (review 64f), which opens, revives and closes it."""

from __future__ import annotations

import os
import threading
from typing import Any, Final

from troth.errors import ConfigError, VaultError

__all__ = [
    "DEAD_SESSION",
    "MapErrors",
    "SharedSession",
    "forget_forked",
    "module_spelling",
    "note_dead",
    "open_session",
    "recorded_serial",
    "twinned",
]

DEAD_SESSION: Final = (
    "SessionHandleInvalid",
    "SessionClosed",
    "UserNotLoggedIn",
    "DeviceRemoved",
    "TokenNotPresent",
)
"""python-pkcs11's errors for a session that ended under the process (a token reset or removed,
a network HSM failing over): the shared session is opened again at the next operation."""


def module_spelling(module_path: str) -> str:
    """The spelling a module is loaded and its session shared by: an absolute path resolved
    (os.path.realpath: its links and `..` followed), so one module named by two paths (Debian's
    /usr/lib/softhsm/libsofthsm2.so, a link to the multiarch path) is loaded once and shares
    one session in the process (review 57b, pkcs11 3: it was loaded twice, the second
    C_Initialize refused, and of two nodes naming it by the two paths the second did not
    open). A bare name is left as given, for the loader's search (never looked up in the
    working directory here: review 53f's planted library)."""
    return os.path.realpath(module_path) if os.path.isabs(module_path) else module_path


def open_session(
    pkcs11: Any,
    module_path: str,
    token_label: str,
    pin: str,
    serial: bytes | None = None,
    *,
    recorded: bool = False,
) -> Any:
    """A logged-in session on the token labelled `token_label`; with `serial` (the token the
    process opened first: `_revive`; `recorded`: the one its node recorded), none on a token
    of that label with another serial number, which is not given the PIN (review 66a2,
    pkcs11 2: a token swapped in under the label was logged in to, and the vault made its
    next keys there)."""
    from pkcs11 import exceptions as p11_errors

    spelling = module_spelling(module_path)
    try:
        lib = pkcs11.lib(spelling)
        if _INITIALIZED_IN.setdefault(spelling, os.getpid()) != os.getpid():
            lib.reinitialize()  # a forked child's own C_Initialize (`forget_forked`)
            _INITIALIZED_IN[spelling] = os.getpid()
    except (RuntimeError, OSError) as exc:
        raise ConfigError(f"cannot load PKCS#11 module {module_path}: {exc}") from exc
    try:
        labelled = list(lib.get_tokens(token_label=token_label))
    except p11_errors.PKCS11Error as exc:
        raise ConfigError(f"cannot list tokens of {module_path}: {type(exc).__name__}") from exc
    if not labelled:
        raise ConfigError(f"no PKCS#11 token labelled {token_label!r}")
    # the one of `serial` among the tokens of the label (review 68d, pkcs11 1: a second token
    # given the label refused the node, MultipleTokensReturned, though its serial was known)
    chosen = [t for t in labelled if serial is None or bytes(t.serial) == serial]
    if len(chosen) > 1:  # none told apart from the others, so none is given the PIN
        raise ConfigError(
            f"{len(chosen)} PKCS#11 tokens are labelled {token_label!r} (serials "
            f"{', '.join(repr(bytes(t.serial)) for t in chosen)}): not logged in to any; give "
            "the node's token a label of its own, or record its serial as token_serial in "
            'node.json (docs/vault.md, "PKCS#11 vault")'
        )
    token = chosen[0] if chosen else labelled[0]
    if serial is not None and bytes(token.serial) != serial:
        if recorded:
            raise serial_mismatch(token_label, bytes(token.serial), serial)
        raise ConfigError(
            f"token {token_label!r} is now another token (serial {bytes(token.serial)!r}, "
            f"not {serial!r}): not logged in to; put back the one this process opened, or "
            "restart the process (a token initialised again on purpose)"
        )
    try:
        return token.open(user_pin=pin, rw=True)
    except p11_errors.PKCS11Error as exc:
        raise ConfigError(f"cannot log in to token {token_label!r}: {type(exc).__name__}") from exc


def recorded_serial(
    token_label: str, recorded: bytes | None, known: bytes | None, shared: SharedSession | None
) -> bytes | None:
    """The serial number a vault opened on `token_label` logs in to a token of: the one its
    node recorded (`recorded`: node.json's `token_serial`), else the one this process met
    first (`known`). ConfigError when the process's session (`shared`) or first login was on
    another token than the node's: review 67j, pkcs11 1 (the first login of a process
    trusted the label alone, so a token put under the label got the PIN and the node's next
    keys)."""
    met = shared.serial if shared is not None and shared.serial is not None else known
    if recorded is not None and met is not None and met != recorded:
        raise serial_mismatch(token_label, met, recorded)
    return recorded if recorded is not None else met


def serial_mismatch(token_label: str, found: bytes, recorded: bytes) -> ConfigError:
    """The error for a token labelled `token_label` whose serial number (`found`) is not the
    one its node recorded (`recorded`), with the remedies."""
    return ConfigError(
        f"token {token_label!r} is another token (serial {found!r}) than the node's (serial "
        f"{recorded!r}, recorded in node.json as token_serial): not logged in to; put the "
        "node's token back, or, if it was initialised again on purpose (its keys are gone), "
        'remove token_serial from node.json (docs/vault.md, "PKCS#11 vault")'
    )


_INITIALIZED_IN: dict[str, int] = {}
"""The process each loaded module was initialised in (C_Initialize), by `module_spelling`."""


def forget_forked(sessions: dict[Any, SharedSession]) -> None:
    """In a forked child: drop the sessions its parent opened, unclosed (they are the parent's),
    so a vault opened here opens its own, on the module initialised anew (`open_session`).
    PKCS#11 v2.20 §6.6.1 ("Applications and processes"): a child must call C_Initialize, and
    what it does with its parent's sessions is undefined (their handles, on a network HSM its
    connection, are the parent's; review 67b, pkcs11 2: a child signed, generated and closed
    on them)."""
    for key in [key for key, shared in sessions.items() if shared.pid != os.getpid()]:
        del sessions[key]


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
        self.lock = threading.RLock()  # (re-entrant: a fork from its holder, `hold_sessions`)
        self.dead = False
        self.generation = 0
        self.refused: str | None = None  # why the PIN is not tried again (`_revive`)
        self.serial: bytes | None = None  # the token's, reopened on no other (review 66a2)
        self.pid = os.getpid()  # the process it is of: no forked child's (`forget_forked`)


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
