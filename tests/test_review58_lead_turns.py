"""Review 58 (lead, after review 58k's guard 1): a process keeps a `Turns` lock file open for
as long as its database is open (a trace log's writer turns, a recorder's chain turns). A child
it forks (multiprocessing's 'fork', a daemon's helper) gets a copy of that open description,
and with it the flock: a process killed in a turn left its lock held for as long as such a
child lived, and every other writer of the log waited out its timeout (StorageError). A child
now closes its copies at once (`os.register_at_fork`), which releases nothing of its parent's
turn."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from tests.support.forks import killed_with_a_child_living
from troth.storage.peers import PeerLock, SoleHolder, Turns


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() of a threaded process
def test_a_process_killed_in_a_turn_leaves_no_turn_held_by_its_children(tmp_path: Path) -> None:
    lock = tmp_path / "trace.db.writer"
    with (
        killed_with_a_child_living(lambda: Turns(lock, 1.0), lambda turns: turns.turn()),
        lock.open("ab") as other,  # the next writer: the turn is free
    ):
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_forked_child_neither_releases_its_parents_turn_nor_shares_it(tmp_path: Path) -> None:
    """The child closes its copy (the parent's turn stays held), and a turn it takes is its
    own: it waits for the parent's (a shared description would have let both in at once)."""
    turns = Turns(tmp_path / "lock", 0.05)
    with turns.turn():
        child = os.fork()
        if child == 0:
            code = 3
            try:
                with turns.turn():
                    code = 2  # in the parent's turn: shared
            except Exception:
                code = 0  # waited out its timeout: the parent's turn is its own
            finally:
                os._exit(code)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        with (tmp_path / "lock").open("ab") as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # still the parent's
    with turns.turn():
        pass


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_sole_holder_killed_leaves_nothing_held_by_its_children(tmp_path: Path) -> None:
    """The trace outbox's sender (`SoleHolder`, held until closed) killed while a child it
    forked lives on: another process becomes the sender."""
    path = tmp_path / "node.db.trace-outbox"

    def hold() -> SoleHolder:
        sender = SoleHolder(path)
        assert sender.take()
        return sender

    with killed_with_a_child_living(hold):
        assert SoleHolder(path).take()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_peer_killed_leaves_no_hold_kept_by_its_children(tmp_path: Path) -> None:
    """A process with node.db open (`PeerLock`, a shared hold) killed while a child it forked
    lives on: the next opener is alone (a broker's recovery runs)."""
    path = tmp_path / "node.db.peers"
    with killed_with_a_child_living(lambda: PeerLock(path)):
        peer = PeerLock(path)
        with peer.alone() as alone:
            assert alone
        peer.close()
