"""Review 49i, lifecycle: what a node killed with SIGKILL leaves (its status file naming a pid
that may since be another process's) and what `troth node stop` and `troth node start` then
do (docs/protocols.md, "Node control")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from troth.node import init_node
from troth.node.daemon import node_status, stop_daemon


def _stale_status(directory: Path, pid: int) -> None:
    """The status file a node killed with SIGKILL leaves, naming `pid`."""
    stale = {"pid": pid, "listening": None, "control": str(directory / "control.sock")}
    (directory / "status.json").write_text(json.dumps(stale))
    os.chmod(directory / "status.json", 0o600)


def test_a_stale_pid_taken_by_a_process_naming_the_node_is_not_stopped(troth_home: Path) -> None:
    """Review 49i, lifecycle 1. Node `web` was killed (SIGKILL, the OOM killer), its status
    file naming its pid; the pid now belongs to another process of the same user whose
    command line holds the words `node`, `start` and `web` (`ssh box troth node start web`,
    a `tmux new troth node start web`, a supervisor's child): it holds no lock at all, so it
    is not the node. Where /proc/locks was read and named no flock of that pid, the command
    line still decided: `troth node status web` said running, `troth node start web` refused
    ("already running"), and `troth node stop web` sent the unrelated process SIGTERM. Now a
    process the command line names is the node only if it has this node's node.lock open.

    Was a strict xfail until `_is_our_node` asked for node.lock among the process's files."""
    init_node("web")
    directory = troth_home / "nodes" / "web"
    bystander = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "node", "start", "web"]
    )
    try:
        _stale_status(directory, bystander.pid)
        assert not node_status(troth_home, "web")["running"]
        assert stop_daemon(troth_home, "web") is False
        assert bystander.poll() is None  # sent nothing
    finally:
        bystander.kill()
        bystander.wait()
