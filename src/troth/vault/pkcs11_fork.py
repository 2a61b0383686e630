"""The PKCS#11 vault's fork hooks (split from troth.vault.pkcs11 and .pkcs11_session, review
74e): before a fork the forking thread takes the session table's lock and every session's of
the process (`hold_sessions`), so no PKCS#11 operation is in flight across it; after it, in
the parent and the child, it releases them (`release_held`); a child makes its own table lock
(`watch`). Reviews 67j, 67r, 68d, 72w, 73d, 73j."""

from __future__ import annotations

import _thread
import functools
import itertools
import operator
import os
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol

if TYPE_CHECKING:
    from troth.vault.pkcs11_session import SharedSession

__all__ = ["ForkHooks", "before_fork", "hold_sessions", "release_held", "watch"]


class Lock(Protocol):
    """A lock held across a fork (`threading.RLock`'s; a test's stand-in)."""

    def acquire(self) -> bool: ...

    def release(self) -> None: ...


Hook = Callable[[], object]  # a fork hook


_HELD: Final = threading.local()
"""Its `holds`: the locks this thread's forks hold, each fork's above a mark (`_BOTTOM`),
released after it: the forking thread's own (lead, session 72, pkcs11 fork 1: one list of the
process, so the first of two threads forking at once popped, and released from its thread,
what the second had just taken (RuntimeError in the after-fork hook), and the second kept the
table's lock for good: the next fork of the process waited for ever). A forked child goes on
in the thread that forked, with its list. A mark a hold (review 72w, pkcs11 1): a fork within
a fork's before-hook (a signal handler's) released, after it, the outer fork's locks too,
which then went on without the table's lock. The mark is put by C calls before any bytecode
of the hook runs (`before_fork`; review 74e, forks4 1: a handler raising at the hook's first
instruction left a fork made in the outer fork's hook with no hold listed, and its after-hook
released the outer fork's), the list made by C calls too (forks4 3: a `threading.local`'s
`__init__` made it, bytecode, at a thread's first fork)."""
_BOTTOM: Final = object()  # a hold's mark: its release stops there
_take: Final = operator.methodcaller("acquire")
_give: Final = operator.methodcaller("release")
_lists: Final[Iterator[list[object]]] = map(
    dict.setdefault,
    map(operator.attrgetter("__dict__"), itertools.repeat(_HELD)),
    itertools.repeat("holds"),
    itertools.starmap(list, itertools.repeat(())),
)
"""Each item the calling thread's list, made at its first (a fresh list each time, kept once)."""
_holds: Final = functools.partial(next, _lists)
_mark: Final = functools.partial(next, map(operator.methodcaller("append", _BOTTOM), _lists))
"""Put a new hold's mark on this thread's list: C calls, no bytecode."""


def _take_held(sessions: dict[Any, SharedSession], table_lock: Callable[[], Lock]) -> None:
    """Take the session table's lock (`table_lock()`), then the lock of each of this process's
    sessions, each listed above this thread's last mark by the C call that takes it."""
    holds = _holds()
    holds.extend(filter(_take, (table_lock(),)))
    mine = [shared.lock for shared in list(sessions.values()) if shared.pid == os.getpid()]
    holds.extend(filter(_take, mine))


def hold_sessions(sessions: dict[Any, SharedSession], table_lock: Lock) -> None:
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
    session's lock was held for good: the next signature on it waited for ever).
    The hook registered is `before_fork`'s chain of C calls, which marks the hold before any
    bytecode runs; this function (a mark, then the locks) is one hold for a caller that is no
    fork hook."""
    _mark()
    _take_held(sessions, functools.partial(next, itertools.repeat(table_lock)))


def before_fork(sessions: dict[Any, SharedSession], table_lock: Callable[[], Lock]) -> Hook:
    """The before-fork hook of `sessions`: `hold_sessions` as a chain of C calls up to its
    mark (each call marks, then runs `_take_held`), so a signal handler that raises or forks
    at its first instruction finds the hold listed (review 74e, forks4 1)."""
    steps = (_mark, functools.partial(_take_held, sessions, table_lock))
    runs = map(map, itertools.repeat(operator.call), itertools.repeat(steps))
    return functools.partial(next, map(any, runs))


_pops: Final = map(operator.attrgetter("pop"), _lists)
_releases: Final = map(
    any, map(map, itertools.repeat(_give), map(iter, _pops, itertools.repeat(_BOTTOM)))
)
"""Each item releases what this thread's last hold took, down to its mark."""
_marked: Final = map(min, map(operator.methodcaller("count", _BOTTOM), _lists), itertools.repeat(1))
"""Each item 1 if this thread lists a hold, else 0 (review 74j, forks5 1)."""
release_held: Final = functools.partial(
    next, map(any, map(itertools.islice, itertools.repeat(_releases), _marked))
)
"""After a fork, in the parent and the child: release what this thread's last hold took (that
fork's), down to its mark, each lock unlisted before it is released, last lock first. A chain
of C calls, not a function: a signal handler runs at a function's first instruction, and one
raising there (a signal that came during the fork, or in a hook written in C before this one)
left the hold listed and its locks held for good (review 73j, forks2 1: CPython reports a
hook's exception and goes on). Nothing where the thread lists no hold: hooks registered during
a fork (troth.vault.pkcs11 first imported by another before-fork hook, or by another thread
then) run after it with no before-hook run (review 74j, forks5 1: IndexError, reported on
the standard error of parent and child)."""


_TABLE_LOCK: Final = "_SESSIONS_LOCK"  # the name of troth.vault.pkcs11's table lock


class ForkHooks(NamedTuple):
    """The hooks `watch` registered: each a chain of C calls."""

    before: Hook
    after: Hook
    unlock_in_child: Hook


def watch(vaults: ModuleType) -> ForkHooks:
    """Register the fork hooks of `vaults` (troth.vault.pkcs11): its session table
    (`_SESSIONS`) held across a fork (`before_fork`, `release_held`), under its table lock
    (`_SESSIONS_LOCK`, read at each fork: a test replaces it), and, after them, a forked
    child's own table lock (the parent's copy may be held by a thread the child does not
    have, and its first open waited for ever: review 67b, pkcs11 4). That one too is a chain
    of C calls (review 74e, forks4 2: a SIGINT reaching the child in its after-fork hooks,
    Ctrl-C goes to the process group, raised at the first instruction of the function that
    made it, and the child kept its parent's copy, held by another thread of the parent when
    the parent's own before-hook was interrupted waiting for it)."""
    table_lock = functools.partial(getattr, vaults, _TABLE_LOCK)
    fresh = itertools.starmap(_thread.RLock, itertools.repeat(()))  # (threading.RLock is bytecode)
    renew = map(setattr, itertools.repeat(vaults), itertools.repeat(_TABLE_LOCK), fresh)
    hooks = ForkHooks(
        before_fork(vaults._SESSIONS, table_lock), release_held, functools.partial(next, renew)
    )
    if hasattr(os, "register_at_fork"):  # no operation in flight at a fork (review 67j)
        # (the hold's three hooks in one call: a fork between two calls had one without another)
        os.register_at_fork(
            before=hooks.before, after_in_parent=hooks.after, after_in_child=hooks.after
        )
        os.register_at_fork(after_in_child=hooks.unlock_in_child)
    return hooks
