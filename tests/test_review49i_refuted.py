"""Review 49i, refuted: attacks on the node lifecycle's crash safety that the code withstood
(kept as passing tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from troth.node import init_node
from troth.node.daemon import control, node_status, start_daemon, stop_daemon


def _wait_gone(pid: int) -> None:
    for _ in range(200):  # a bound, not a timing assertion: the kill is asynchronous
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def test_a_node_killed_with_sigkill_starts_again_without_deleting_its_files(
    troth_home: Path,
) -> None:
    """A daemon killed with SIGKILL leaves status.json, node.pid and control.sock (its
    cleanup never ran). `troth node status` says not running (the stale pid reported),
    `troth node stop` says not running and signals nothing, and the next `troth node start`
    starts the node over those files; its control socket answers."""
    init_node("n")
    first = start_daemon(troth_home, "n", None)
    directory = troth_home / "nodes" / "n"
    second: dict[str, object] = {}
    try:
        os.kill(first["pid"], signal.SIGKILL)
        _wait_gone(first["pid"])
        assert (directory / "status.json").exists()
        assert (directory / "node.pid").exists()
        status = node_status(troth_home, "n")
        assert status["running"] is False
        assert status["stale_pid"] == first["pid"]
        assert stop_daemon(troth_home, "n") is False
        second = start_daemon(troth_home, "n", None)
        assert second["pid"] != first["pid"]
        assert control(troth_home, "n", "status", {})["identifier"] == first["identifier"]
        assert stop_daemon(troth_home, "n") is True
        assert node_status(troth_home, "n")["running"] is False
    finally:
        for started in (first, second):
            if started:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(str(started["pid"])), signal.SIGKILL)
