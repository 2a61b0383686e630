"""Review 50e, node lifecycle (the gaps the last session wrote down and left):

1. `troth node stop` while the node was inside `runtime.start()` said "not running" (its
   status file is written once it is up), and the node then came up.
2. A stale pid in status.json (a daemon killed by SIGKILL) reused by another process holding
   node.lock (`troth vault rekey`) was taken for the node, and `troth node stop` sent it
   SIGTERM: the daemon's start time (/proc/PID/stat) is recorded and checked.
3. `troth node start --foreground --tcp-listen ADDR` never recorded the address (the
   background start does: the node's tickets carry it).
4. The daemon logged a full traceback in node.log for an OSError of a control request.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from troth.node import init_node
from troth.node.daemon import control_failure, node_status, stop_daemon
from troth.node.home import write_private_file
from troth.node.node import node_dir, open_node
from troth.node.process import send_signal, start_time

SRC = str(Path(__file__).resolve().parents[1] / "src")  # absolute: the subprocesses' code


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "TROTH_HOME": str(home), "PYTHONPATH": SRC}


def _wait(condition: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def held_in_start(home: Path) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """`python -m troth.node n` held inside `runtime.start()` until the file `go` exists
    (`inside` exists once it is there): the process, `inside` and `go`."""
    inside, go = home / "inside", home / "go"
    code = textwrap.dedent(
        f"""
        import asyncio, pathlib
        from troth.node.runtime import NodeRuntime
        original = NodeRuntime.start
        async def held(self, *args, **kwargs):
            pathlib.Path({str(inside)!r}).write_text("x")
            while not pathlib.Path({str(go)!r}).exists():
                await asyncio.sleep(0.01)
            return await original(self, *args, **kwargs)
        NodeRuntime.start = held
        from troth.node.__main__ import main
        main(["n"])
        """
    )
    process = subprocess.Popen([sys.executable, "-c", code], env=_env(home))
    return process, inside, go


def test_stop_while_the_node_starts_stops_it(tmp_path: Path) -> None:
    """The daemon is held inside `runtime.start()` (until the test lets it go on): `node stop`
    meanwhile stops it (it is starting, not "not running"), and it does not come up."""
    init_node("n", home=tmp_path)
    process, inside, go = held_in_start(tmp_path)
    try:
        _wait(inside.exists, "the daemon inside runtime.start()")
        assert node_status(tmp_path, "n")["running"] is False  # not up: nothing to ask it
        stopped: list[bool] = []
        stopping = threading.Thread(target=lambda: stopped.append(stop_daemon(tmp_path, "n")))
        stopping.start()
        time.sleep(0.2)  # (either way: the signal before or after it goes on, it stops)
        go.write_text("x")
        stopping.join(30)
        assert stopped == [True]
        assert process.wait(10) == 0
        assert node_status(tmp_path, "n") == {"name": "n", "running": False}
        assert not (node_dir(tmp_path, "n") / "status.json").exists()
    finally:
        go.write_text("x")
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_stale_pid_reused_by_a_lock_holder_is_not_stopped(tmp_path: Path) -> None:
    """status.json names a pid that another process now has, one holding node.lock as
    `troth vault rekey` does: it is not the node (its start time is not the one recorded),
    and `node stop` leaves it alone."""
    init_node("n", home=tmp_path)
    directory = node_dir(tmp_path, "n")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            "f = open(sys.argv[1], 'a')\n"
            "fcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
            str(directory / "node.lock"),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"locked\n"
        started = start_time(holder.pid)
        assert started is not None
        status = {  # what the daemon that had this pid wrote, started before the holder
            "pid": holder.pid,
            "started": started - 1,
            "listening": None,
            "control": str(directory / "control.sock"),
            "identifier": None,
        }
        write_private_file(directory / "status.json", json.dumps(status).encode())
        assert node_status(tmp_path, "n")["running"] is False
        assert stop_daemon(tmp_path, "n") is False
        assert holder.poll() is None  # not signalled
    finally:
        holder.kill()
        holder.wait()


def test_the_daemon_records_its_start_time(tmp_path: Path) -> None:
    """What closes pid reuse: the running daemon's status file carries its start time, which
    is its pid's now."""
    init_node("n", home=tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "troth.node", "n"], env=_env(tmp_path), stderr=subprocess.DEVNULL
    )
    try:
        _wait(lambda: node_status(tmp_path, "n")["running"], "the daemon")
        status = node_status(tmp_path, "n")
        assert status["pid"] == process.pid
        assert status["started"] == start_time(process.pid)
        assert stop_daemon(tmp_path, "n") is True
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_foreground_start_records_its_address(tmp_path: Path) -> None:
    """`troth node start n --foreground --tcp-listen ADDR` records ADDR once the node listens
    there, as the background start does."""
    init_node("n", home=tmp_path)
    address = f"127.0.0.1:{_free_port()}"
    command = [sys.executable, "-m", "troth.cli.main", "node", "start", "n", "--foreground"]
    process = subprocess.Popen(
        [*command, "--tcp-listen", address], env=_env(tmp_path), stderr=subprocess.DEVNULL
    )
    try:
        _wait(lambda: node_status(tmp_path, "n")["running"], "the foreground node")
        assert node_status(tmp_path, "n")["listening"] == address
        assert stop_daemon(tmp_path, "n") is True
        process.wait(10)
        with open_node("n", home=tmp_path) as node:
            assert node.config.listen == address
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    "exc", [ConnectionResetError(104, "Connection reset by peer"), OSError(28, "No space")]
)
def test_an_oserror_of_a_control_request_is_one_line(
    exc: OSError, caplog: pytest.LogCaptureFixture
) -> None:
    """An OSError (a client gone mid-request, a disk full) is logged in one line, no
    traceback; the caller is answered with it."""
    with caplog.at_level(logging.INFO, logger="troth.node.daemon"):
        answer = control_failure(exc)
    assert answer["ok"] is False
    (record,) = caplog.records
    assert record.exc_info is None
    assert "\n" not in record.getMessage()
    assert str(exc.strerror) in record.getMessage()


def test_a_bug_in_a_control_request_still_has_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What 4 does not hide: any other exception, a bug, is logged with its traceback."""
    with caplog.at_level(logging.INFO, logger="troth.node.daemon"):
        control_failure(RuntimeError("a bug"))
    (record,) = caplog.records
    assert record.exc_info is not None
    assert record.exc_info[1] is not None
    assert str(record.exc_info[1]) == "a bug"


def test_a_signal_goes_only_to_the_process_that_started_then() -> None:
    """What `node stop` signals through (`send_signal`): a process whose start time is not
    the recorded one is not signalled (ProcessLookupError); the one whose it is, is."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = start_time(child.pid)
        assert started is not None
        with pytest.raises(ProcessLookupError):
            send_signal(child.pid, started - 1, signal.SIGTERM)
        assert child.poll() is None
        send_signal(child.pid, started, signal.SIGTERM)
        assert child.wait(10) == -signal.SIGTERM
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
