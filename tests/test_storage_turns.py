"""Turns to write a database across processes (troth.storage.peers.Turns): one holder at a
time, a waiter gets the turn once it is let go or its holder dies, and a turn that is not let
go within the timeout is a StorageError, as SQLite's own busy timeout is."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.support.traces import Held, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.errors import StorageError
from troth.storage.peers import Turns
from troth.storage.sqlite import BUSY_TIMEOUT_ENV

HOLDER = """\
import sys, time
from pathlib import Path
from troth.storage.peers import Turns
turns = Turns(Path(sys.argv[1]), 1.0)
with turns.turn():
    print("holding", flush=True)
    sys.stdin.readline()  # until the test says so (or kills it)
print("let go", flush=True)
"""


def _holder(path: Path) -> subprocess.Popen[str]:
    """A child process holding the turn on `path` until a line arrives on its stdin."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    if child.stdout.readline().strip() != "holding":
        child.kill()
        raise AssertionError("the holder did not take its turn")
    return child


def test_a_turn_another_process_holds_past_the_timeout_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "db.writer"
    child = _holder(path)
    try:
        with (
            pytest.raises(StorageError, match="for the turn to write") as raised,
            Turns(path, 0.05).turn(),
        ):
            pass
        assert "another process's write does not end" in str(raised.value)
    finally:
        child.kill()
        child.wait()


def test_the_waiter_writes_once_the_holder_lets_go(tmp_path: Path) -> None:
    path = tmp_path / "db.writer"
    child = _holder(path)
    order: list[str] = []
    waiter = Turns(path, 30)

    def wait_for_turn() -> None:
        with waiter.turn():
            order.append("waiter wrote")

    thread = threading.Thread(target=wait_for_turn)
    thread.start()
    assert child.stdin is not None
    assert child.stdout is not None
    thread.join(0.2)
    assert order == []  # the holder still has it
    child.stdin.write("go\n")
    child.stdin.flush()
    assert child.stdout.readline().strip() == "let go"
    thread.join(30)
    assert order == ["waiter wrote"]
    child.wait()
    waiter.close()


def test_a_holder_killed_mid_turn_holds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db.writer"
    child = _holder(path)
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    turns = Turns(path, 0.05)  # no waiting: a short timeout would fail the test
    with turns.turn():
        pass
    turns.close()


def test_one_turn_at_a_time_within_a_process_too(tmp_path: Path) -> None:
    """Two Turns objects on one file are two holders (flock belongs to the open file)."""
    path = tmp_path / "db.writer"
    first, second = Turns(path, 30), Turns(path, 0.01)
    with (
        first.turn(),
        pytest.raises(StorageError, match="for the turn to write"),
        second.turn(),
    ):
        pass
    with second.turn():  # first let go
        pass
    first.close()
    second.close()


def test_a_trace_logs_leaders_take_turns_with_other_processes(
    tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log's group commit waits for its turn (`<log>.writer`): while another process holds
    it, an append is not committed, and past the busy timeout it fails (StorageError), nothing
    written; once let go, appends go on."""
    monkeypatch.setenv(BUSY_TIMEOUT_ENV, "0.05")
    path = tmp_path / "trace.db"
    log = open_log(path, clock)
    agent = Held()
    appender = recorder(log, agent, clock)
    appender.record(tool_call())
    child = _holder(path.with_name("trace.db.writer"))
    try:
        with pytest.raises(StorageError, match="for the turn to write"):
            appender.record(tool_call())
        assert log.size() == 1
    finally:
        child.kill()
        child.wait()
    appender.record(tool_call())
    assert log.size() == 2
    log.close()
