"""The PKCS#11 vault's fork hooks (split from troth.vault.pkcs11 and .pkcs11_session, review
74e): before a fork the forking thread takes the session table's lock and every session's of
the process (`hold_sessions`), so no PKCS#11 operation is in flight across it; after it, in
the parent and the child, it releases them (`release_held`); a child makes its own table lock
(`watch`). Reviews 67j, 67r, 68d, 72w, 73d, 73j."""

from __future__ import annotations

import functools
import itertools
import operator
import os
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from troth.vault.pkcs11_session import SharedSession

__all__ = ["hold_sessions", "release_held", "watch"]


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


_TABLE_LOCK: Final = "_SESSIONS_LOCK"  # the name of troth.vault.pkcs11's table lock


def watch(vaults: ModuleType) -> None:
    """Register the fork hooks of `vaults` (troth.vault.pkcs11): its session table
    (`_SESSIONS`) held across a fork, under its table lock (`_SESSIONS_LOCK`, read at each
    fork: a test replaces it), and a forked child's own table lock (`_unlock_in_child`)."""

    def unlock_in_child() -> None:
        """A forked child's own `_SESSIONS_LOCK`: the parent's copy may be held by a thread the
        child does not have, and its first open waited for ever (review 67b, pkcs11 4). (The
        fork's hold is released before, by `release_held`: a chain of C calls, where a signal
        handler raising at this function's first instruction would have left it held.)"""
        setattr(vaults, _TABLE_LOCK, threading.RLock())  # the one lock, the child's own

    if hasattr(os, "register_at_fork"):  # no operation in flight at a fork (review 67j)
        os.register_at_fork(
            before=lambda: hold_sessions(vaults._SESSIONS, vaults._SESSIONS_LOCK),
            after_in_parent=release_held,
            after_in_child=release_held,
        )
        os.register_at_fork(after_in_child=unlock_in_child)
