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
from pathlib import Path

import pytest

from troth.storage.peers import PeerLock


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
    with holder.alone() as alone:
        assert alone
        waiting = threading.Thread(target=lambda: opened.append(PeerLock(path, wait=10)))
        waiting.start()
        while not _waits(waiting):  # its lock files open, it waits for the hold
            os.sched_yield()
        child = os.fork()
        if child == 0:  # lives on, as a helper would
            os.close(end)
            os.read(may_end, 1)
            os._exit(0)
    waiting.join()
    holder.close()
    opened[0].close()
    try:
        probe = PeerLock(path)
        with probe.alone() as alone:
            assert alone
        probe.close()
    finally:
        os.close(end)
        os.close(may_end)
        os.waitpid(child, 0)
