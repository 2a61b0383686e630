"""Review 74e (area: forks4): the PKCS#11 fork hooks (troth.vault.pkcs11_fork) against signal
handlers that raise or fork at the first instruction of a hook written in Python.

- 74e forks4 1 (73j forks2 3 in a real process): a fork made by a signal handler while an outer
  fork's before-hook waited for a session's lock (a signature in flight; the table's lock
  taken and listed), its own before-hook interrupted by a raising handler at its first
  instruction, listed no hold; its after-hook released the one below, the outer fork's (the
  table's lock), and the outer fork took the session's lock unlisted and went on: the forking
  thread kept that lock for good (every later signature on the session from another thread
  waited for ever). The before-hook now lists the hold (a mark on the thread's list) by a C
  call before any bytecode runs.
- 74e forks4 2: a forked child's own table lock was made by a hook written in Python: a SIGINT
  reaching the child during its after-fork hooks (Ctrl-C goes to the whole process group) ran
  its handler at that hook's first instruction, and the child kept its parent's copy; held by
  another thread of the parent at the fork (a first open's login, while the parent's own
  before-hook was interrupted waiting for it), the child's first open waited for ever. The
  child's lock is now made by a chain of C calls."""

from __future__ import annotations

import sys

import pytest

from tests.support.processes import survives

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork and pthread_kill on Linux")

_PRELUDE = r"""
import ctypes, faulthandler, functools, operator, os, signal, sys, threading
from types import SimpleNamespace
faulthandler.dump_traceback_later(10, exit=True)  # a hang fails the test, bounded
raised = []
sys.unraisablehook = lambda report: raised.append(type(report.exc_value).__name__)
libc = ctypes.CDLL(None, use_errno=True)  # (its raise runs no bytecode and checks no signal)


class Raised(Exception):
    pass


def raising(signum, frame):
    raise Raised


def shots(*calls):
    # a fork hook written in C: each call runs the next of `calls`, then nothing
    return functools.partial(next, map(operator.call, iter(calls)), None)


def kill(signum):  # to the thread that calls it, in the process it is called in
    return functools.partial(getattr(libc, "raise"), signum)
"""

_NESTED = (
    _PRELUDE
    + r"""
from troth.vault import pkcs11 as vaults
from troth.vault.pkcs11_fork import _HELD

main = threading.main_thread().ident
inner_done = threading.Event()


class Waited:  # a session's lock: says when the forking thread comes to take it
    def __init__(self):
        self.lock = threading.RLock()
        self.waiting = threading.Event()

    def acquire(self):
        if threading.get_ident() == main:
            self.waiting.set()
        return self.lock.acquire()

    def release(self):
        self.lock.release()


def forking(signum, frame):  # the inner fork, made in the outer fork's before-hook
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    inner_done.set()


session = SimpleNamespace(lock=Waited(), pid=os.getpid())
vaults._SESSIONS[("74e", "token")] = session
signal.signal(signal.SIGUSR1, forking)
signal.signal(signal.SIGUSR2, raising)
# before-hooks run last registered first: this one before troth's, at the outer fork nothing,
# at the inner one a signal whose handler raises at the next instruction (troth's hook's)
os.register_at_fork(before=shots(int, kill(signal.SIGUSR2)))


def signer():  # a signature in flight: the outer fork waits for it, then is signalled
    with session.lock.lock:
        session.lock.waiting.wait(5)
        signal.pthread_kill(main, signal.SIGUSR1)
        inner_done.wait(5)


thread = threading.Thread(target=signer)
thread.start()
pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
thread.join(5)
print(inner_done.is_set(), *raised)
print(session.lock.lock._is_owned(), vaults._SESSIONS_LOCK._is_owned(), len(_HELD.holds))
"""
)


def test_a_fork_from_a_handler_in_a_hold_whose_own_hook_was_interrupted_keeps_the_outer_hold() -> (
    None
):
    """74e forks4 1: the outer fork waits in its before-hook for a session's lock; a handler
    there forks, and that fork's before-hook is interrupted at its first instruction by a
    handler that raises: after both forks the forking thread holds no lock and lists no hold
    (it kept the session's lock, taken after the inner fork released the outer's table lock)."""
    out = survives(_NESTED, timeout=20).split()
    assert out[:2] == ["True", "Raised"]  # the inner fork ran, its hook was interrupted
    assert out[2:] == ["False", "False", "0"]


_CHILD = (
    _PRELUDE
    + r"""
import logging, troth.crypto.private, troth.vault.base, troth.vault.pkcs11_fork  # (any hooks)
# after-hooks run first registered first: this one just before troth's (imported next), in the
# child a signal (Ctrl-C reaches the child too) whose handler raises at the next instruction
os.register_at_fork(after_in_child=shots(kill(signal.SIGUSR2)))
from troth.vault import pkcs11 as vaults

main = threading.main_thread().ident
signal.signal(signal.SIGUSR2, raising)
signal.signal(signal.SIGUSR1, raising)
opening, forked = threading.Event(), threading.Event()


def in_hook():  # the main thread is inside troth's before-hook
    frame = sys._current_frames().get(main)
    while frame is not None and not frame.f_code.co_filename.endswith("pkcs11_fork.py"):
        frame = frame.f_back
    return frame is not None


def opener():  # a first open's login holds the table's lock; the fork waits for it
    with vaults._SESSIONS_LOCK:
        opening.set()
        while not in_hook():
            threading.Event().wait(0.001)
        signal.pthread_kill(main, signal.SIGUSR1)  # Ctrl-C: the fork's wait interrupted
        forked.wait(5)


thread = threading.Thread(target=opener, daemon=True)
thread.start()
opening.wait(5)
parent, pid = os.getpid(), 0
try:
    pid = os.fork()
except Raised:  # the child's signal, if no hook ran its handler
    pass
if os.getpid() != parent:
    free = vaults._SESSIONS_LOCK.acquire(blocking=False)  # a first open here would wait
    os._exit(0 if free else 3)
forked.set()
thread.join(5)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), *raised)
"""
)


def test_a_signal_in_a_childs_after_fork_hooks_leaves_it_its_own_table_lock() -> None:
    """74e forks4 2: another thread holds the table's lock (a first open's login) while the
    main thread forks; a SIGINT-like signal interrupts the before-hook's wait (the hook
    raises, the fork goes on without it) and another reaches the child during its after-fork
    hooks: the child's table lock is free (it was its parent's copy, held by a thread the
    child does not have, and the child's first open waited for ever)."""
    out = survives(_CHILD, timeout=20).split()
    assert "Raised" in out[1:]  # the parent's before-hook was interrupted
    assert out[0] == "0"


_FIRST_IN_MAIN = (
    _PRELUDE
    + r"""
imported = {}
loader = threading.Thread(target=lambda: imported.update(vaults=__import__("troth.vault.pkcs11")))
loader.start()  # the vault module imported by another thread than the main one
loader.join(5)
from troth.vault import pkcs11 as vaults

main = threading.main_thread().ident
inner_done = threading.Event()
session = SimpleNamespace(lock=threading.RLock(), pid=os.getpid())
vaults._SESSIONS[("74e", "token")] = session
codes = []


def forking(signum, frame):  # a fork made by a handler at the hook's first instruction
    pid = os.fork()
    if pid == 0:
        os._exit(0 if session.lock.acquire(blocking=False) else 3)  # taken by a signer?
    codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    inner_done.set()


def holding():  # the main thread waits in troth's hold for the signer's lock
    frame = sys._current_frames().get(main)
    while frame is not None and frame.f_code.co_name not in ("_take_held", "hold_sessions"):
        frame = frame.f_back
    return frame is not None


def signer():  # a signature in flight until a fork waits for it
    with session.lock:
        started.set()
        while not holding() and not inner_done.is_set():
            threading.Event().wait(0.001)


signal.signal(signal.SIGUSR1, forking)
os.register_at_fork(before=shots(kill(signal.SIGUSR1)))  # (run before troth's before-hook)
started = threading.Event()
thread = threading.Thread(target=signer)
thread.start()
started.wait(5)
pid = os.fork()  # the main thread's first fork
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
thread.join(5)
print(*codes, *raised)
"""
)


def test_a_fork_from_a_handler_at_a_threads_first_hold_waits_for_the_signature_in_flight() -> None:
    """74e forks4 3 (found in 74e's first fix, d80d36c6): the vault module imported by another
    thread, the main thread's first fork made its per-thread list (a `threading.local`'s
    `__init__`, bytecode) before marking its hold; a handler forking at that `__init__`'s first
    instruction found the list half made (AttributeError in that fork's hooks), so its fork
    went on while another thread held a session's lock (a signature in flight: what the hold
    is for, review 67j). Now made by C calls (a `dict.setdefault` on the local's `__dict__`)."""
    assert survives(_FIRST_IN_MAIN, timeout=20).split() == ["0"]
