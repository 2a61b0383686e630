"""The PKCS#11 vault's one logged-in session per token per process (`SharedSession`), how it is
opened (`open_session`: review 66a2 moved it here) and its error mapping (`MapErrors`): split
from troth.vault.pkcs11 (review 64f), which opens, revives and closes it."""

from __future__ import annotations

import functools
import itertools
import operator
import os
import threading
from collections.abc import Iterator
from typing import Any, Final

from troth.errors import ConfigError, VaultError

__all__ = [
    "DEAD_SESSION",
    "MapErrors",
    "SharedSession",
    "forget_forked",
    "hold_sessions",
    "module_spelling",
    "note_dead",
    "open_session",
    "recorded_serial",
    "release_held",
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


class _Held(threading.local):
    """The holds `hold_sessions` took for a fork, released after it: the forking thread's own
    (lead, session 72, pkcs11 fork 1: one list of the process, so the first of two threads
    forking at once popped, and released from its thread, what the second had just taken
    (RuntimeError in the after-fork hook), and the second kept the table's lock for good: the
    next fork of the process waited for ever). A forked child goes on in the thread that
    forked, with its list. One entry a hold (review 72w, pkcs11 1): a fork within a fork's
    before-hook (a signal handler's, between two bytecodes of `hold_sessions`) released, after
    it, the outer fork's locks too, which then went on without the table's lock. An entry is
    the hold's release (made before it takes any lock), which unlists it first.
    `release_last` runs the last entry, if any, with no bytecode: each of its calls takes the
    list's last entry (`next(reversed(holds), ())`) and runs it (`any`)."""

    def __init__(self) -> None:
        self.holds: list[Iterator[None]] = []
        lasts = map(next, map(reversed, itertools.repeat(self.holds)), itertools.repeat(()))
        self.release_last: Final = functools.partial(next, map(any, lasts))


_HELD: Final = _Held()
_BOTTOM: Final = object()  # under a hold's locks: its release stops there
_LAST: Final = slice(-1, None)
_take: Final = operator.methodcaller("acquire")
_give: Final = operator.methodcaller("release")


def hold_sessions(sessions: dict[Any, SharedSession], table_lock: threading.RLock) -> None:
    """Before a fork: take `table_lock` (the session table's: a first open's login and a last
    close's C_CloseSession run under it, with no session of the table's lock held yet or any
    more; review 67r, pkcs11 2, a fork went on while the module was inside them), then the
    lock of each of this process's sessions, so no operation on one (every troth call into
    python-pkcs11 holds it) is in flight while the process forks.
    Review 67j, pkcs11 2: python-pkcs11 reads key attributes through a
    `functools.cached_property`, whose lock (Python 3.11: one per attribute of a class) a
    thread signing held at the fork, and the child's own vault hung at its first signature.
    No operation holds two of them, or one and then the table's, so this waits only for those
    in flight, and none runs the application's code while it holds one (the vault logs after:
    review 67r, pkcs11 1, a logging handler that forked waited here for ever for its own
    thread's lock). The locks are re-entrant: a thread that forks while it holds one (a signal
    handler, run between two bytecodes of a signature) takes it again (review 68d, pkcs11 2:
    it waited for ever for itself, and with the table's lock held every vault of the process).
    Each lock is listed by the C call that takes it (`filter` in `list.extend`), so a signal
    handler that raises here (CPython forks on after a hook's exception) leaves none taken
    unlisted (review 73d, forks 1: Ctrl-C while a fork waited for a long signature, taken by the
    signing thread, ran its handler in this thread just after the acquire returned, and the
    session's lock was held for good: the next signature on it waited for ever)."""
    holds = _HELD.holds
    held: list[object] = [_BOTTOM]
    unlist = map(operator.delitem, (holds,), (_LAST,))  # (run as the last entry: `_Held`)
    holds.append(itertools.chain(unlist, map(_give, iter(held.pop, _BOTTOM))))
    held.extend(filter(_take, (table_lock,)))
    mine = [shared.lock for shared in list(sessions.values()) if shared.pid == os.getpid()]
    held.extend(filter(_take, mine))


release_held: Final = functools.partial(operator.methodcaller("release_last"), _HELD)
"""After a fork, in the parent and the child: release what this thread's last `hold_sessions`
took (that fork's), unlisted first, last lock first. A chain of C calls, not a function: a
signal handler runs at a function's first instruction, and one raising there (a signal that
came during the fork, or in a hook written in C before this one) left the hold listed and its
locks held for good (review 73j, forks2 1: CPython reports a hook's exception and goes on)."""


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
