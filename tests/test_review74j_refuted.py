"""Review 74j (area: forks5): attacks on 74e's PKCS#11 fork hooks (troth.vault.pkcs11_fork) as
chains of C calls that did not work, kept as guards. Each runs in a child process, bounded (a
hang fails it); the session table holds one session of the process, its lock a real
`threading.RLock` (a C `_thread.RLock`, as a `SharedSession`'s), the table's lock the module's.
In every process after its fork: no hold listed, and the table's and the session's locks free
to another thread."""

from __future__ import annotations

import sys

import pytest

from tests.support.processes import survives

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork on Linux")

_SCRIPT = r"""
import faulthandler, gc, os, resource, subprocess, sys, threading
from types import SimpleNamespace
faulthandler.dump_traceback_later(15, exit=True)  # a hang fails the test, bounded
from troth.vault import pkcs11 as vaults
from troth.vault.pkcs11_fork import _BOTTOM, _HELD
session = SimpleNamespace(lock=threading.RLock(), pid=os.getpid())
vaults._SESSIONS[("74j", "token")] = session
parent, bad, resumed = os.getpid(), [], []
sys.unraisablehook = lambda report: None  # (a hook's exception: CPython forks on)


class Raised(Exception):
    pass


def probe(got):  # whether this thread takes the table's lock and the session's
    taken = [lk for lk in (vaults._SESSIONS_LOCK, session.lock) if lk.acquire(blocking=False)]
    for lock in taken:
        lock.release()
    got.append(len(taken) == 2)


def free():  # the table's lock and the session's, to another thread
    got = []
    thread = threading.Thread(target=probe, args=(got,))
    thread.start()
    thread.join(5)
    return got == [True]


def clean():
    return not _HELD.__dict__.get("holds") and free()


def table_free():  # the table's lock, to another thread
    got = []
    thread = threading.Thread(target=lambda: got.append(vaults._SESSIONS_LOCK.acquire(False)))
    thread.start()
    thread.join(5)
    return got == [True]


def fork(action=None):  # a fork; from a handler ("fork", "resume"), or a handler that raises
    if action == "raise":
        raise Raised
    pid = os.fork()
    if pid == 0 and action == "resume":  # the handler's child goes on with the outer fork
        resumed.append(os.getpid())
        return
    if pid == 0:  # (a handler's: in the outer hold, its table lock this child's own)
        os._exit(0 if (table_free() if action else free()) else 3)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code:
        bad.append(("child", code))


def checked(what):
    if not clean():
        bad.append((what, list(_HELD.__dict__.get("holds", ()))))


scenario = sys.argv[1]
if scenario == "frames":  # each Python frame the fork's hooks run, and the list at its call
    gc.disable()  # (a collection's finalizers: "gc")
    here, calls = sys._getframe(), []

    def profile(frame, event, arg):
        if event == "call" and frame.f_back is here:  # a hook's own frame (C calls no frame)
            holds = _HELD.__dict__.get("holds") or [None]
            code = frame.f_code
            name = f"{code.co_filename.rsplit('/', 1)[-1]}:{code.co_name}"
            calls.append(f"{name}{'@mark' if holds[-1] is _BOTTOM else ''}")

    sys.setprofile(profile)
    pid = os.fork()
    sys.setprofile(None)
    troth = sorted({call for call in calls if "pkcs11" in call})
    if pid == 0:
        print("child", *troth, flush=True)
        os._exit(0)
    os.waitpid(pid, 0)
    print("parent", *troth)
    checked("frames")
if scenario == "opcodes":  # a raising or forking handler at each bytecode the hooks run
    for action in ("raise", "fork", "resume"):
        count = 0
        while True:
            seen, hit = [0], []

            def local(frame, event, arg):
                if event == "opcode" and os.getpid() == parent and not hit:
                    seen[0] += 1
                    if seen[0] > count:
                        hit.append(frame.f_code.co_name)
                        fork(action)
                return local

            def tracer(frame, event, arg):
                if frame.f_code.co_filename.endswith("pkcs11_fork.py"):
                    frame.f_trace_opcodes = True
                    return local
                return None

            sys.settrace(tracer)
            fork()
            sys.settrace(None)
            checked((action, count))
            if os.getpid() in resumed:  # the handler's child, its outer fork's parent
                os._exit(4 if bad else 0)
            if not hit:
                break
            count += 1
        print(action, count)
if scenario == "gc":  # a finalizer run by a collection at each allocation of the C chains
    armed, where = [], set()

    class Cycle:
        def __init__(self):
            self.me = self

        def __del__(self):
            if os.getpid() == parent and armed:
                action = armed.pop()
                holds = _HELD.__dict__.get("holds")
                where.add("no list" if holds is None else "chain" if not holds else "hold")
                fork(action)

    def once(action, threshold):  # the collection at the (threshold + 1)th allocation
        gc.collect()
        Cycle()
        armed.append(action)
        gc.set_threshold(threshold)
        fork()
        gc.set_threshold(700)
        armed.clear()
        checked((action, threshold))

    for action in ("raise", "fork"):
        for threshold in range(25):
            once(action, threshold)
            thread = threading.Thread(target=once, args=(action, threshold))
            thread.start()  # (its first fork: its list made in the chain)
            thread.join(5)
    print(*sorted(where))
if scenario == "refused":  # fork, a subprocess's preexec fork and forkpty each refused
    go, seen = threading.Event(), []
    checker = threading.Thread(target=lambda: (go.wait(5), probe(seen)))
    checker.start()  # (made before the limit: a thread counts against it)
    if os.geteuid() == 0:  # (root is not held to RLIMIT_NPROC)
        os.setgid(65534)
        os.setuid(65534)
    resource.setrlimit(resource.RLIMIT_NPROC, (0, resource.getrlimit(resource.RLIMIT_NPROC)[1]))
    argv = [sys.executable, "-c", "0"]
    for name, call in (
        ("fork", os.fork),
        ("popen", lambda: subprocess.Popen(argv, preexec_fn=int)),
        ("forkpty", os.forkpty),
    ):
        try:
            call()
            print(name, "forked")
        except BlockingIOError:
            print(name, "refused", "listed" if _HELD.holds else "unlisted")
    go.set()
    checker.join(5)
    print(*seen)
if scenario == "threads":  # 10,000 threads that each make their list and hold, no fork
    hooks = vaults._FORK_HOOKS

    def batch(count):
        for _ in range(count):
            thread = threading.Thread(target=lambda: (hooks.before(), hooks.after()))
            thread.start()
            thread.join()

    batch(100)
    start = sys.getallocatedblocks()
    batch(10_000)
    print(sys.getallocatedblocks() - start < 1_000)
print("bad", *bad)
"""


def _run(scenario: str) -> list[str]:
    return survives(_SCRIPT, scenario, timeout=30).splitlines()


def test_the_fork_hooks_run_no_python_frame_but_the_hold_after_its_mark() -> None:
    """Tried (74j forks5 1): a Python frame run by troth's fork hooks before the hold's mark or
    in the release (a `functools.partial` of a Python function, a `threading.local`
    subclass's `__init__`, `operator.call` of a Python callable, a property, an `__eq__` of
    the list's items against the mark): a profile function (`sys.setprofile`, 'call' events
    of frames called from the hooks' C calls) saw, in the parent and in the child, one frame of
    troth's, `_take_held` in the parent's before-hook, called with the hold's mark already
    last on the thread's list."""
    assert _run("frames") == [
        "child pkcs11_fork.py:_take_held@mark",
        "parent pkcs11_fork.py:_take_held@mark",
        "bad",
    ]


def test_a_handler_raising_or_forking_at_each_bytecode_the_hooks_run_leaves_no_hold() -> None:
    """Tried (74j forks5 1-2): a signal handler that raises, or forks, at each bytecode troth's
    fork hooks run (those of `_take_held` and its list comprehension, after the mark; a trace
    function with opcode events runs the handler's code there, one fork for each): after each
    fork no hold listed and both locks free, in the parent and its child; a handler's child
    has its own table lock, and one that goes on from the handler (two holds nested in its
    thread) makes the outer fork, after which it and its child list no hold either."""
    out = _run("opcodes")
    assert out[0].split()[0] == "raise"
    assert int(out[0].split()[1]) > 20  # (the bytecodes of `_take_held` and its comprehension)
    assert out[1:3] == [f"fork {out[0].split()[1]}", f"resume {out[0].split()[1]}"]
    assert out[3:] == ["bad"]


def test_a_finalizer_run_by_a_collection_inside_the_c_chains_leaves_no_hold() -> None:
    """Tried (74j forks5 1): a collection (CPython 3.11 collects at an allocation) inside the
    hooks' C chains (a `map`, a bound `pop`, a thread's list made at its first fork) runs a
    finalizer, bytecode, where a handler may raise or fork: it ran there before the mark
    (the thread's list not yet made, or empty) and within a hold; raising there is reported
    and swallowed by the collection, and a fork there is a hold of its own, nested: no hold
    listed after, both locks free, in the main thread and in another at its first forks."""
    assert _run("gc") == ["chain hold no list", "bad"]


def test_a_refused_fork_runs_the_after_hooks_and_leaves_no_hold() -> None:
    """Tried (74j forks5 2): a fork refused (EAGAIN, RLIMIT_NPROC at 0 for an unprivileged
    user) after troth's before-hook marked the hold and took the locks, by `os.fork`, by
    `subprocess.Popen` with a `preexec_fn` (whose fork runs the hooks) and by `os.forkpty`:
    CPython runs the parent's after-hooks on the failure too, so no hold is left listed and
    both locks are free to another thread."""
    assert _run("refused") == [
        "fork refused unlisted",
        "popen refused unlisted",
        "forkpty refused unlisted",
        "True",
        "bad",
    ]


def test_ten_thousand_short_lived_threads_leave_no_list_behind() -> None:
    """Tried (74j forks5 3): 10,000 threads that each make their list of holds (by the C
    chain, at their first hold) and hold and release once: the memory blocks allocated after
    they ended are as before (fewer than 1,000 more: a list left by each would be 10,000 and
    more); a thread's `threading.local` dictionary goes with it."""
    assert _run("threads") == ["True", "bad"]
