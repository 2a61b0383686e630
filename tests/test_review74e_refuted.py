"""Review 74e (area: forks4): attacks on the PKCS#11 fork hooks (troth.vault.pkcs11_fork, after
74e's fix) on SoftHSM2 that did not work, kept as guards (each in a child process, bounded:
a hang fails, it never blocks). In every process when its fork returned: no hold listed, no
lock of the vault held by its thread, the parent's signatures from another thread go on, and a
child opens its own vault and signs with the parent's key."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import SoftHsm
from tests.support.processes import survives

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork and signals on Linux")

_SCRIPT = r"""
import ctypes, faulthandler, functools, itertools, operator, os, signal, sys, threading
faulthandler.dump_traceback_later(15, exit=True)  # a hang fails the test, bounded
module, label, pin, scenario = sys.argv[1:5]
libc = ctypes.CDLL(None, use_errno=True)
report_r, report_w = os.pipe()
raised = []  # what a fork hook raised (CPython's "Exception ignored in")
sys.unraisablehook = lambda report: raised.append(type(report.exc_value).__name__)


class Raised(Exception):
    pass


def raising(signum, frame):
    raise Raised


def shots(*calls):  # a hook written in C: each call runs the next of `calls`, then nothing
    return functools.partial(next, map(operator.call, iter(calls)), None)


def raised_here(signum):  # a signal to the calling thread, by a C call
    return functools.partial(getattr(libc, "raise"), signum)


def say(line):
    os.write(report_w, f"{line}\n".encode())


def owns():  # a lock of the vault held by this thread
    locks = [vaults._SESSIONS_LOCK] + [s.lock for s in vaults._SESSIONS.values()]
    return any(lock._is_owned() for lock in locks)


def clean():
    return not _HELD.holds and not owns()


def helper(where):  # another library's hook that forks a helper process
    def fork():
        pid = os.fork()
        if pid == 0:  # the helper: inside the forking process's hook, its own table lock free
            free = vaults._SESSIONS_LOCK.acquire(blocking=False)
            say(f"helper {where} {'ok' if free else 'held'}")
            os._exit(0)
        os.waitpid(pid, 0)
    return fork


import logging, pkcs11, troth.crypto.private, troth.vault.base, troth.vault.pkcs11_fork
signal.signal(signal.SIGUSR2, raising)
if scenario == "hooks":  # registered before troth's: its before-hook runs after troth's hold
    os.register_at_fork(
        before=shots(helper("before, in the hold")),
        after_in_parent=shots(helper("after in the parent, in the hold")),
        after_in_child=shots(helper("after in the child, in the hold")),
    )
if scenario == "sigint":  # every after-hook of troth's with Ctrl-C pending, parent and child
    os.register_at_fork(
        after_in_parent=raised_here(signal.SIGINT), after_in_child=raised_here(signal.SIGINT)
    )
from troth.crypto import KeyType
from troth.vault import KeyPurpose
from troth.vault import pkcs11 as vaults
from troth.vault.pkcs11 import Pkcs11Vault
from troth.vault.pkcs11_fork import _HELD

if scenario == "hooks":  # registered after troth's: its before-hook runs before troth's
    os.register_at_fork(before=shots(helper("before, before the hold")))
if scenario == "nested":  # in troth's hold a handler forks; in that fork's hold one raises
    def forking(signum, frame):
        pid = os.fork()
        if pid == 0:
            say(f"nested child {'held' if owns() else 'ok'}")  # (in the outer hold: listed)
            os._exit(0)
        os.waitpid(pid, 0)

    signal.signal(signal.SIGUSR1, forking)
    os.register_at_fork(
        before=shots(raised_here(signal.SIGUSR1), raised_here(signal.SIGUSR2))
    )

vault = Pkcs11Vault(module, label, pin)
handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
stop, signed = threading.Event(), []


def signer():  # C_Sign in flight while the main thread forks
    while not stop.is_set():
        vault.sign(handle, b"parent")
        signed.append(1)


thread = threading.Thread(target=signer, daemon=True)
thread.start()
parent = os.getpid()


def signs_apart(who):  # a forked process: clean, it signs with the parent's key on its own vault
    state = "ok" if clean() else "held"
    own = Pkcs11Vault(module, label, pin)
    own.sign(handle, who.encode())
    own.close()
    say(f"{who} {state}, hooks raised {raised}")


if scenario == "multiprocessing":  # multiprocessing's after-fork hooks fork again, in its child
    import multiprocessing, multiprocessing.util

    def again(_):
        pid = os.fork()
        if pid == 0:
            signs_apart("grandchild")
            os._exit(0)
        os.waitpid(pid, 0)

    multiprocessing.util.register_after_fork(again, again)
    process = multiprocessing.get_context("fork").Process(target=signs_apart, args=("child",))
    process.start()
    process.join(10)
    say(f"parent {'ok' if clean() else 'held'}, process exited {process.exitcode}")
for _ in range({"sigint": 3, "multiprocessing": 0}.get(scenario, 1)):
    pid = 0
    try:
        pid = os.fork()
    except (Raised, KeyboardInterrupt):  # a handler that ran when the fork returned
        say(f"interrupted in the {'child' if os.getpid() != parent else 'parent'}")
    if os.getpid() != parent:
        signs_apart("child")
        os._exit(0)
    os.waitpid(pid, 0)
    say(f"parent {'ok' if clean() else 'held'}")
before = len(signed)
while len(signed) == before and thread.is_alive():  # a signature after the forks
    threading.Event().wait(0.001)
stop.set()
thread.join(10)
say("signed" if not thread.is_alive() else "hung")
say(f"hooks raised {raised}")
vault.delete(handle)
vault.close()
os.close(report_w)
with os.fdopen(report_r) as report:
    print(report.read(), end="")
"""


def _run(softhsm: SoftHsm, scenario: str) -> list[str]:
    return sorted(  # (each line once: a hook's fork runs the hooks not yet run, in its child)
        set(
            survives(
                _SCRIPT, softhsm.module, softhsm.token_label, softhsm.pin, scenario, timeout=30
            ).splitlines()
        )
    )


def test_forks_from_another_librarys_fork_hooks_leave_the_locks_as_they_were(
    softhsm: SoftHsm,
) -> None:
    """74e refuted: another library's fork hooks fork a helper process (as a library's
    at-fork hook may; multiprocessing's run in the child it starts): a before-hook run before
    troth's hold and one run after it (inside it: the inner fork takes the locks again,
    re-entrantly), an after-hook in the parent and one in the child run before troth's release
    (the outer hold still listed: the helper's fork marks its own above it). Each helper finds
    its own table lock free; the parent and the child are clean after the fork, the child signs
    on its own vault, the parent's signer goes on."""
    assert _run(softhsm, "hooks") == [
        "child ok, hooks raised []",
        "helper after in the child, in the hold ok",
        "helper after in the parent, in the hold ok",
        "helper before, before the hold ok",
        "helper before, in the hold ok",
        "hooks raised []",
        "parent ok",
        "signed",
    ]


def test_ctrl_c_in_the_after_fork_hooks_of_parent_and_child_leaves_no_lock_held(
    softhsm: SoftHsm,
) -> None:
    """74e refuted: three forks while another thread signs (C_Sign in flight at each), each
    with SIGINT raised by a C hook just before troth's after-fork hooks, in the parent and in
    the child (Ctrl-C reaches both): troth's hooks (chains of C calls) ran no handler, so the
    KeyboardInterrupt came when the fork returned, with the parent and the child clean. (On
    802ca0d9 the child's hook that made its own table lock raised it: 74e forks4 2's cause.)"""
    assert _run(softhsm, "sigint") == [
        "child ok, hooks raised []",
        "hooks raised []",  # (in a hook, the KeyboardInterrupt was CPython's "ignored")
        "interrupted in the child",
        "interrupted in the parent",
        "parent ok",
        "signed",
    ]


def test_nested_forks_from_signal_handlers_in_the_hold_leave_the_locks_as_they_were(
    softhsm: SoftHsm,
) -> None:
    """74e refuted: a fork while another thread signs, its hold's first instruction running a
    handler that forks, that fork's hold's first instruction running one that raises (74e
    forks4 1's shape, on SoftHSM2 and its real locks): the nested fork's child holds no lock
    (the outer hold's mark is listed there: its fork is in that hook), the outer fork's parent
    and child are clean, the child signs, the parent's signer goes on."""
    assert _run(softhsm, "nested") == [
        "child ok, hooks raised ['Raised']",  # (the parent's list, the inner hold's handler)
        "hooks raised ['Raised']",
        "nested child ok",
        "parent ok",
        "signed",
    ]


def test_a_fork_from_multiprocessings_after_fork_hooks_in_its_child_signs_apart(
    softhsm: SoftHsm,
) -> None:
    """74e refuted: a multiprocessing process started (fork context) while another thread
    signs, with an after-fork hook of multiprocessing's (`util.register_after_fork`, run in
    the child as it starts) that forks again: the child and the grandchild are clean and sign
    on vaults of their own, the parent is clean and its signer goes on."""
    assert _run(softhsm, "multiprocessing") == [
        "child ok, hooks raised []",
        "grandchild ok, hooks raised []",
        "hooks raised []",
        "parent ok, process exited 0",
        "signed",
    ]
