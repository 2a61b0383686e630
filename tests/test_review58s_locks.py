"""Review 58s, locks 1: a `PeerLock` was kept (`_KEPT_LOCKS`, closed in a forked child) only
once its shared hold was taken, but its lock file was open from the start, and that hold waits
while a peer is alone (`_shared_within`, up to `wait` seconds; without `wait`, for as long as
the peer stays alone). A child another thread forked meanwhile (multiprocessing's 'fork', a
daemon's helper) kept its copy of the open file; the flock the parent then took was on their
shared description, so node.db's shared hold outlived the parent's close (or its death) for as
long as the child lived: no holder was ever alone (`troth vault rekey`, broker recovery)."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from troth.errors import StorageError
from troth.storage.peers import PeerLock, Turns


def _waits(thread: threading.Thread) -> bool:
    """Whether `thread` waits for a shared hold now (in `_shared_within`)."""
    assert thread.ident is not None
    frame = sys._current_frames().get(thread.ident)
    return frame is not None and frame.f_code.co_name == "_shared_within"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() of a threaded process
def test_a_child_forked_while_a_hold_waits_keeps_nothing(tmp_path: Path) -> None:
    """A holder is alone; another thread opens node.db (its PeerLock waits); a child is forked
    then, and lives on. Once the holder lets go, the waiting open is shared, then closed: no
    one holds node.db, so a new holder is alone (it was not: the child's copy held it)."""
    path = tmp_path / "node.db.brokers"
    holder = PeerLock(path)
    opened: list[PeerLock] = []
    may_end, end = os.pipe()
    started, start = os.pipe()
    with holder.alone() as alone:
        assert alone
        waiting = threading.Thread(target=lambda: opened.append(PeerLock(path, wait=10)))
        waiting.start()
        while not _waits(waiting):  # its lock files open, it waits for the hold
            os.sched_yield()
        child = os.fork()
        if child == 0:  # lives on, as a helper would
            os.close(end)
            os.write(start, b"s")  # (its fork handlers ran)
            os.read(may_end, 1)
            os._exit(0)
    os.read(started, 1)
    waiting.join()
    holder.close()
    opened[0].close()
    try:
        probe = PeerLock(path)
        with probe.alone() as alone:
            assert alone
        probe.close()
    finally:
        for fd in (end, may_end, started, start):
            os.close(fd)
        os.waitpid(child, 0)


def _in_child(work: Callable[[], object]) -> int:
    """Run `work` in a forked child: its exit code (0: it ended, 2: a StorageError, 1: any
    other error)."""
    child = os.fork()
    if child == 0:
        code = 1
        try:
            work()
            code = 0
        except StorageError:
            code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_child_using_its_parents_locks_gets_storage_errors_or_ends_cleanly(
    tmp_path: Path,
) -> None:
    """Locks 2: a child's copies are closed (locks 1), so its parent's PeerLock holds nothing
    there: `alone()` is a StorageError (it was a bare ValueError, `I/O operation on closed
    file`); a child forked in a turn (same thread) ends it holding nothing to let go (it raised
    TypeError from `flock(None)` as it left the block)."""
    lock = PeerLock(tmp_path / "node.db.brokers")
    turns = Turns(tmp_path / "trace.db.writer", 0.1)

    def alone() -> None:
        with lock.alone():
            pass

    try:
        assert _in_child(alone) == 2, "alone()"
        child = -1
        try:
            with turns.turn():
                child = os.fork()
        except BaseException:
            if child == 0:  # the child failed to leave the block
                os._exit(1)
            raise
        if child == 0:  # out of the parent's turn, cleanly
            os._exit(0)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        lock.close()
        turns.close()
