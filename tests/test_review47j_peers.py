"""Review 47j: `troth.storage.peers.PeerLock.alone()` (docs/storage.md, "Locks"). Its attempt
to convert the shared flock(2) every open peer holds into an exclusive one is not atomic: a
refused conversion leaves no lock at all, and the shared one was taken again only afterwards.
In that window another peer trying to hold the lock alone (the rekey, an open settling what a
killed rekey left, a broker recovering) found no one else open. Each test wraps fcntl.flock so
that the other peer acts exactly in the window (no timing)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run
from troth.node.rekey import SCRUB_MARK
from troth.storage import PeerLock, SqliteDatabase, SqliteKeyStore


@contextmanager
def in_the_window(
    monkeypatch: pytest.MonkeyPatch, lock: Path, act: Callable[[], None]
) -> Iterator[list[int]]:
    """fcntl.flock wrapped: `act` runs once, right after a refused non-blocking exclusive
    flock on `lock` (a conversion refused: the lock file's open file description then holds
    nothing) and before the next flock on that file. Yields the list `act` was run into."""
    real = fcntl.flock
    ino = os.stat(lock).st_ino
    refused: set[int] = set()
    ran: list[int] = []

    def flock(fd: Any, operation: int) -> None:
        number = fd if isinstance(fd, int) else fd.fileno()
        ours = os.fstat(number).st_ino == ino
        if ours and number in refused and not ran:
            ran.append(1)
            act()
        refused.discard(number)
        try:
            real(fd, operation)
        except BlockingIOError:
            if ours and operation == fcntl.LOCK_EX | fcntl.LOCK_NB:
                refused.add(number)
            raise

    monkeypatch.setattr(fcntl, "flock", flock)
    yield ran


def test_no_peer_is_alone_while_another_is_open(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Review 47j, peers 1. Two peers open (two open file descriptions: they conflict as two
    processes would), both asking whether they are alone: A's conversion is refused (B is
    open), and in its window B's succeeded, though A never closed. Both must be told no."""
    path = tmp_path / "db.peers"
    a, b = PeerLock(path), PeerLock(path)
    seen: list[bool] = []

    def b_asks() -> None:
        with b.alone() as alone:
            seen.append(alone)

    with in_the_window(monkeypatch, path, b_asks) as ran, a.alone() as a_alone:
        assert not a_alone
    assert ran
    assert seen == [False]
    a.close()
    with b.alone() as alone:  # A closed: B is alone now
        assert alone
    b.close()


_REKEY_ENV = {"PYTHONPATH": "src"}


def test_no_rekey_runs_while_an_open_settles(
    monkeypatch: pytest.MonkeyPatch, troth_home: Path
) -> None:
    """Review 47j, peers 2. An open of a node whose rekey left its scrub owed asks whether it
    has the node alone (troth.node.rekey.settle_rekey); another process has it open, so no. In
    the refused conversion's window that other process closed and `troth vault rekey` (a real
    process) found the node held by no one: it re-sealed every row while this open was in
    progress, holding (by PeerLock's word) the node open. It must be refused.

    Was a strict xfail until `alone()` converted only under the gate (`<lock>.gate`): the
    rekey's own `alone()` finds the gate held and says another process has the node open."""
    run("node", "create", "n")
    run("identity", "create", "agent", "--node", "n")
    path = troth_home / "nodes" / "n"
    db = SqliteDatabase(path / "node.db")
    SqliteKeyStore(db).put_vault_meta(SCRUB_MARK, b"\x01")  # the scrub owed: open asks
    db.close()
    kek = (path / "vault.key").read_bytes()
    other = PeerLock(path / "node.db.vault")  # another process's open node
    rekeys: list[subprocess.CompletedProcess[str]] = []

    def other_closes_and_rekey_runs() -> None:
        other.close()
        rekeys.append(
            subprocess.run(
                [sys.executable, "-m", "troth.cli.main", "vault", "rekey", "--node", "n"],
                capture_output=True,
                text=True,
                timeout=90,
                env=dict(os.environ, **_REKEY_ENV),
            )
        )

    from troth.node import open_node

    lock = path / "node.db.vault"
    with in_the_window(monkeypatch, lock, other_closes_and_rekey_runs) as ran:
        open_node("n").close()
    assert ran
    assert rekeys[0].returncode == 3, rekeys[0]
    assert "another process has node 'n' open" in rekeys[0].stderr
    assert (path / "vault.key").read_bytes() == kek
    run("vault", "rekey", "--node", "n")  # nothing open now: it runs
    assert (path / "vault.key").read_bytes() != kek


def test_a_held_gate_makes_no_one_wait(tmp_path: Path) -> None:
    """Review 47j, peers 3. The gate is taken without waiting: held by another (here an
    independent open of it), a peer still opens (it takes only the lock, shared) and is told at
    once that it is not alone; let go, the peer is alone."""
    path = tmp_path / "db.peers"
    first = PeerLock(path)
    first.close()  # the gate made
    with open(first.gate, "ab") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        peer = PeerLock(path)
        with peer.alone() as alone:
            assert not alone
        fcntl.flock(other, fcntl.LOCK_UN)
    with peer.alone() as alone:
        assert alone
    peer.close()


_ALONE_THEN_WAIT = """
import sys, time
from pathlib import Path
from troth.storage import PeerLock
with PeerLock(Path(sys.argv[1])).alone() as alone:
    print(alone, flush=True)
    time.sleep(600)
"""


def test_a_peer_killed_while_alone_leaves_no_lock(tmp_path: Path) -> None:
    """Review 47j, peers 4. A process killed (SIGKILL) while alone, holding the lock exclusive
    and the gate, holds neither: the next peer opens and is alone."""
    path = tmp_path / "db.peers"
    child = subprocess.Popen(
        [sys.executable, "-c", _ALONE_THEN_WAIT, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, **_REKEY_ENV),
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "True\n"
        for held in (path, path.with_name("db.peers.gate")):  # both held meanwhile
            with open(held, "ab") as probe, pytest.raises(BlockingIOError):
                fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
    finally:
        child.kill()
        child.wait()
    peer = PeerLock(path)
    with peer.alone() as alone:
        assert alone
    peer.close()
