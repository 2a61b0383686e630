"""Review 71v (testpower): attacks on the forked crash tests (tests.support.forked, review 71n)
that did not work, kept as passing tests.

Eight one-line mutations of the crash-safety steps the forked tests guard were each caught by
them (the report lists them); these are the fork-specific doubts: that a crash point armed in
a forked child fires elsewhere than in a spawned process (or arms the test's own process), and
that a thread of the test's process holding a lock at the fork hangs the child."""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.cli import run_json
from tests.support.forked import ForkedCall, troth_forked
from troth import faults


def test_a_crash_point_armed_in_a_forked_child_fires_there_and_leaves_the_test_unarmed() -> None:
    """71v testpower 1 (refuted): a crash point is armed at import (`troth.faults._ARMED`); a
    child forked from the test's process inherits the test's module state, so the point might
    fire nowhere (the parent's None kept) or arm the test's process too. Tried: `identity
    create` killed before and after its commit in forked children. Each exits 137 at its
    point (troth_forked checks the code) leaving what a spawned process leaves (nothing, then
    the identity), and the test's process stays unarmed."""
    troth_forked("identity", "create", "a", crash="identity.create.before-commit")
    assert faults._ARMED is None
    assert [row["name"] for row in run_json("identity", "list")] == []
    troth_forked("identity", "create", "a", crash="identity.create.after-commit")
    assert faults._ARMED is None
    assert [row["name"] for row in run_json("identity", "list")] == ["a"]


def _log_a_warning() -> None:
    logging.getLogger("troth.node").warning("the child logged")


@contextmanager
def _held_by_another_thread(*locks: threading.Lock | threading.RLock) -> Iterator[None]:
    """`locks` taken by a thread of this process, held until the block ends."""
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        for lock in locks:
            lock.acquire()
        held.set()
        done.wait(10)
        for lock in reversed(locks):
            lock.release()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert held.wait(30)
    try:
        yield
    finally:
        done.set()
        thread.join(30)


def test_a_logging_lock_a_test_thread_holds_at_the_fork_does_not_hang_the_child() -> None:
    """71v testpower 2 (refuted): under xdist (execnet's thread) or beside a node served in a
    thread, another thread of the test's process may hold a lock at the fork, which the child
    (with no such thread) then waits for until the 90-s timeout: flaky. Tried: the lock of
    logging's last-resort handler (what a forked child's warnings are written through: no
    handler on its root) held by a thread while a forked child logs a warning. CPython
    re-creates every handler's lock in a forked child (logging's module lock it takes before
    the fork, so the fork waits for a thread holding that one instead), and
    `tests.support.forked` gives the child stdout/stderr objects of its own: the child logs
    and exits 0."""
    handler_lock = logging.lastResort.lock if logging.lastResort is not None else None
    assert handler_lock is not None
    with _held_by_another_thread(handler_lock):
        child = ForkedCall(_log_a_warning)
        try:
            out, err = child.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(child.pid, 9)
            child.wait()
            raise
    assert child.returncode == 0, err
    assert "the child logged" in err
    assert out == ""
